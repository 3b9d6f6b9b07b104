"""End to end: a real Prometheus server (Debian's package, via scripts/install-tools.sh) on
127.0.0.1 scrapes a keeper's /metrics every second with the alert rules loaded; then EVERY
dashboard panel query and EVERY alert expression is evaluated through /api/v1/query. Each
must parse; each panel query must return data; every rule must evaluate without error.

Two keepers are scraped, one per run of the test: the real `nosana-keeper run` against the
local chain's demo world, and a stand-in that fills every metric and label (so a panel for
something the demo world never does, such as a claim, is proven too)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from deploy_tools import REPO, RULES, concrete, dashboard, load_yaml, panels, rule_alerts, tool
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from keeper.service.metrics import Metrics, new_metrics

JOB = "nosana-keeper"  # the scrape job; the dashboard's $job is set to it (deploy_tools)
TASKS = ("expired_runs", "stopped_jobs", "finished_jobs")
ACTIONS = {  # action -> the reason it is taken for (keeper.tasks.plan.Reason values)
    "quitAdmin": "run_timed_out",
    "claim": "job_stopped",
    "clean": "job_expired",
    "cleanAdmin": "market_gone",
}
RPC_METHODS = ("getProgramAccounts", "getMultipleAccounts", "sendTransaction", "getBalance")
SCRAPES_BEFORE_QUERYING = 4
DEADLINE_SECONDS = 60.0


# --------------------------------------------------------------------------- the keepers
# STAND-IN: start_keeper_for_e2e() serves a real keeper metrics registry
# (keeper.service.metrics.new_metrics) filled with representative samples, advanced on every
# scrape as a busy keeper would: every action, reason, outcome and RPC method is seen.
# start_demo_keeper_for_e2e() below is the real thing: `nosana-keeper localnet --world demo`
# and `nosana-keeper run` against it. Both yield the same "127.0.0.1:<metrics port>" target.


def _advance(metrics: Metrics, step: int) -> None:
    """One scrape interval of a busy keeper: every metric moves, every label seen."""
    now = time.time()
    metrics.chain_time.set(now - 1.5)
    metrics.chain_time_lag.set(1.5)
    metrics.balance_lamports.set(2_000_000_000 - 5_000 * step)
    metrics.priority_fee.set(1_000 + step)
    metrics.orphan_jobs.set(3)
    metrics.legacy_jobs.set(12)
    metrics.fees_paid_lamports.inc(5_000)
    metrics.claim_rent_lamports.inc(1_200_000)
    metrics.confirmation_latency.observe(1.2 + (step % 5) * 0.4)
    if step % 3 == 0:
        metrics.priority_fee_fallbacks.inc()
    for cause in ("balance_floor", "fee_budget"):
        metrics.sending_paused.labels(cause=cause).set(0)
    metrics.leader.set(1)
    metrics.leadership_transitions.labels(change="acquired").inc(step % 2)
    metrics.lease_renew_failures.labels(reason="timeout").inc(step % 3 == 0)
    for i, task in enumerate(TASKS):
        metrics.scans.labels(task=task, outcome="ok").inc()
        metrics.scan_duration.labels(task=task).observe(0.4 + i)
        metrics.accounts_found.labels(task=task, kind="job").set(1_000 + 10 * i)
        metrics.accounts_waiting.labels(task=task).set(40 + step + i)
        metrics.skips.labels(task=task, reason="not_expired").inc(7)
        metrics.last_success.labels(task=task).set(now - i)
    metrics.scans.labels(task="finished_jobs", outcome="error").inc(step % 2)
    metrics.record_backlog(
        "finished_jobs", ["job_expired", "market_gone"], {"job_expired": 900 - step}, {}
    )
    metrics.scan_duplicates.labels(kind="job").inc(step % 2)
    metrics.live_mode.set(1)
    metrics.live_connected.set(1)
    metrics.live_reconnects.inc(step % 2)
    metrics.resyncs.labels(cause="interval").inc(step % 2)
    for kind in ("job", "run", "market", "clock"):
        metrics.live_notifications.labels(kind=kind).inc(3)
    metrics.due_to_confirmed.labels(task="finished_jobs").observe(1.0 + step % 3)
    metrics.count_response_bytes("getProgramAccounts", 10_000)
    metrics.count_response_bytes("programNotification", 500)
    metrics.updates.labels(source="live").inc(3)
    metrics.updates.labels(source="full_read").inc(100)
    for kind in ("market", "run", "job"):
        metrics.full_read_accounts.labels(kind=kind).set(10)
    metrics.pass_errors.labels(task="finished_jobs").inc(step % 2)
    for action, reason in ACTIONS.items():
        metrics.actions_planned.labels(action=action, reason=reason).inc(20)
        metrics.actions_sent.labels(action=action).inc(20)
        metrics.actions_confirmed.labels(action=action, reason=reason).inc(19)
        metrics.actions_failed.labels(action=action, reason="already_closed").inc(1)
        metrics.instructions_per_transaction.labels(action=action).observe(19)
        metrics.transaction_density_ratio.labels(action=action).set(19 / 21)
        metrics.reclaimed_lamports.labels(action=action).inc(19 * 3_000_000)
    for outcome in ("confirmed", "expired", "failed"):
        metrics.transactions.labels(outcome=outcome).inc(3 if outcome == "confirmed" else 1)
    for method in RPC_METHODS:
        metrics.rpc_requests.labels(method=method, outcome="ok").inc(10)
        metrics.rpc_requests.labels(method=method, outcome="error").inc(step % 2)
        metrics.rpc_latency.labels(method=method).observe(0.08 + 0.01 * step)


@contextlib.asynccontextmanager
async def start_keeper_for_e2e() -> AsyncIterator[str]:
    """STAND-IN for the real keeper (see above): yields its scrape target, host:port."""
    metrics = new_metrics()
    metrics.build_info.info({"version": "0.1.0"})
    scrapes = 0

    async def serve_metrics(_request: web.Request) -> web.Response:
        nonlocal scrapes
        scrapes += 1
        _advance(metrics, scrapes)
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", serve_metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = _free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def _wait_for_line(log: Path, text: str, process: asyncio.subprocess.Process) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_SECONDS
    while loop.time() < deadline and process.returncode is None:
        if text in await asyncio.to_thread(log.read_text):
            return
        await asyncio.sleep(0.2)
    output = await asyncio.to_thread(log.read_text)
    pytest.fail(f"no {text!r} from the process:\n{output[-3000:]}")


async def _wait_for_first_pass(metrics_url: str, keeper: asyncio.subprocess.Process) -> None:
    """Until the keeper's /metrics shows a successful pass (panels need one to show data)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_SECONDS
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        while loop.time() < deadline and keeper.returncode is None:
            await asyncio.sleep(0.5)
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(metrics_url) as response:
                    if "nosana_keeper_last_success_timestamp_seconds{" in await response.text():
                        return
    pytest.fail("the keeper made no successful pass in time")


@contextlib.asynccontextmanager
async def _process(log: Path, *args: str) -> AsyncIterator[asyncio.subprocess.Process]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEPER_")}
    with log.open("w") as output:
        process = await asyncio.create_subprocess_exec(*args, stdout=output, stderr=output, env=env)
        try:
            yield process
        finally:
            await _stop(process)


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), timeout=15)
        except TimeoutError:
            process.kill()
            await process.wait()


@contextlib.asynccontextmanager
async def start_demo_keeper_for_e2e(workdir: Path) -> AsyncIterator[str]:
    """The real keeper: `nosana-keeper run` against the local chain's demo world, configured
    from config/profiles/localnet.yaml with short intervals; yields its scrape target."""
    keeper_cli = [sys.executable, "-m", "keeper"]
    chain_port, metrics_port = _free_port(), _free_port()
    keypairs = workdir / "keypairs"
    async with _process(
        workdir / "localnet.log",
        *keeper_cli, "localnet", "--world", "demo", "--port", str(chain_port),
        "--keypair-dir", str(keypairs),
    ) as chain:  # fmt: skip
        await _wait_for_line(workdir / "localnet.log", "serving", chain)
        config = load_yaml(REPO / "config" / "profiles" / "localnet.yaml")
        config["keypair"] = str(keypairs / "keeper.json")
        config["rpc"]["url"] = f"http://127.0.0.1:{chain_port}"
        config["metrics"] = {"host": "127.0.0.1", "port": metrics_port}
        config["log"] = {"format": "json"}
        for task in ("quit", "clean"):
            config[task] = {"interval_seconds": 2}
        (workdir / "keeper.yaml").write_text(yaml.safe_dump(config))
        async with _process(
            workdir / "keeper.log", *keeper_cli, "run", "--config", str(workdir / "keeper.yaml")
        ) as keeper:
            await _wait_for_first_pass(f"http://127.0.0.1:{metrics_port}/metrics", keeper)
            yield f"127.0.0.1:{metrics_port}"


# --------------------------------------------------------------------------- prometheus


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.asynccontextmanager
async def start_prometheus(target: str, workdir: Path) -> AsyncIterator[str]:
    """A real Prometheus on loopback scraping `target` every second; yields its base URL."""
    binary = tool("prometheus")
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {
                "job_name": JOB,
                # As the Kubernetes service discovery would label a pod.
                "static_configs": [{"targets": [target], "labels": {"namespace": "nosana"}}],
            }
        ],
    }
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = _free_port()
    log = (workdir / "prometheus.log").open("w")
    process = await asyncio.create_subprocess_exec(
        str(binary),
        f"--config.file={workdir / 'prometheus.yml'}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        stdout=log,
        stderr=log,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await _stop(process)
        log.close()


async def _query(session: aiohttp.ClientSession, base: str, expr: str) -> dict[str, Any]:
    async with session.get(f"{base}/api/v1/query", params={"query": expr}) as response:
        body: dict[str, Any] = await response.json(content_type=None)
        return body


async def _wait_for(session: aiohttp.ClientSession, base: str, log: Path) -> None:
    """Until Prometheus is ready, has scraped enough and has evaluated every rule."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_SECONDS
    while loop.time() < deadline:
        await asyncio.sleep(0.5)
        try:
            scraped = await _query(session, base, f'count_over_time(up{{job="{JOB}"}}[1m])')
            async with session.get(f"{base}/api/v1/rules") as response:
                rules = (await response.json())["data"]["groups"]
        except (aiohttp.ClientError, KeyError):
            continue
        samples = scraped.get("data", {}).get("result", [])
        evaluated = rules and all(
            r["lastEvaluation"] > "1970-01-02" for g in rules for r in g["rules"]
        )
        if samples and float(samples[0]["value"][1]) >= SCRAPES_BEFORE_QUERYING and evaluated:
            return
    output = await asyncio.to_thread(log.read_text)
    pytest.fail(f"Prometheus did not scrape and evaluate in time:\n{output[-3000:]}")


@contextlib.asynccontextmanager
async def _keeper(kind: str, workdir: Path) -> AsyncIterator[str]:
    if kind == "stand-in":
        async with start_keeper_for_e2e() as target:
            yield target
    else:
        async with start_demo_keeper_for_e2e(workdir) as target:
            yield target


@pytest.fixture(params=["demo-world", "stand-in"])
async def prometheus(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[aiohttp.ClientSession, str]]:
    async with (
        _keeper(request.param, tmp_path) as target,
        start_prometheus(target, tmp_path) as base,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
    ):
        await _wait_for(session, base, tmp_path / "prometheus.log")
        yield session, base


async def test_every_panel_and_alert_evaluates_against_a_real_prometheus(
    prometheus: tuple[aiohttp.ClientSession, str],
) -> None:
    session, base = prometheus
    problems: list[str] = []

    for panel in panels(dashboard()):
        for target in panel["targets"]:
            answer = await _query(session, base, concrete(target["expr"]))
            where = f"panel {panel['title']!r} {target['refId']}"
            if answer["status"] != "success":
                problems.append(f"{where}: {answer.get('error')}")
            elif not answer["data"]["result"]:
                problems.append(f"{where}: no data")

    for alert in rule_alerts(load_yaml(RULES)):
        answer = await _query(session, base, alert["expr"])
        if answer["status"] != "success":
            problems.append(f"alert {alert['alert']}: {answer.get('error')}")

    async with session.get(f"{base}/api/v1/rules") as response:
        groups = (await response.json())["data"]["groups"]
    loaded = {r["name"]: r for g in groups for r in g["rules"]}
    assert set(loaded) == {a["alert"] for a in rule_alerts(load_yaml(RULES))}
    problems += [
        f"rule {name}: {rule.get('lastError')}"
        for name, rule in loaded.items()
        if rule["health"] != "ok"
    ]
    assert problems == [], "\n".join(problems)

    # The checks above can fail: a typo'd metric has no data, bad syntax does not parse.
    assert (await _query(session, base, "nosana_keeper_balance_lamport"))["data"]["result"] == []
    broken = await _query(session, base, "sum by (task (nosana_keeper_accounts_waiting)")
    assert broken["status"] == "error"
