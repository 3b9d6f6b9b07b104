"""A slow or trickling RPC never hangs a pass: request deadlines, a pass deadline, the next
tick. The hostile proxy sends getProgramAccounts bodies a byte at a time."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from keeper.service.cli import main
from tests.hostile_rpc import HostileRpc, Rule, reads_account_data
from tests.integration.conftest import LOCAL_PROFILE, KeeperCli
from tests.integration.probe import free_port as _free_port
from tests.integration.probe import get as _get
from tests.integration.probe import wait_for as _wait_for
from tests.integration.test_service import _service_env

# Scans that read data trickle; the start-up check's key-only read of the markets does not.
TRICKLE = Rule(method="getProgramAccounts", trickle_every_s=0.5, when=reads_account_data())


@pytest.fixture
def proxy(cli: KeeperCli) -> Iterator[HostileRpc]:
    with HostileRpc.run_in_thread(cli.chain.url) as hostile:
        yield hostile


def _run_once(cli: KeeperCli, url: str, **settings: str) -> Result:
    command = ["run", "--once", "--config", str(LOCAL_PROFILE), "--rpc-url", url]
    command += ["--keypair", str(cli.keypair)]
    return CliRunner().invoke(main, command, env={**cli.env, **settings})


def _json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _summary(result: Result) -> dict[str, object]:
    parsed: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])["summary"]
    return parsed


def test_a_trickling_scan_ends_run_once_at_the_scan_deadline(
    cli: KeeperCli, proxy: HostileRpc
) -> None:
    proxy.set_rules(TRICKLE)
    result = _run_once(
        cli, proxy.url, KEEPER_RPC_SCAN_DEADLINE_SECONDS="2", KEEPER_RPC_MAX_RETRIES="0"
    )
    assert result.exit_code == 1, result.output
    summary = _summary(result)
    assert summary["sent"] == 0
    assert summary["errors"] == 3  # every task's pass failed, none hung
    failed = [line for line in _json_lines(result.stderr) if line["event"] == "pass failed"]
    assert len(failed) == 3
    assert all("rpc.scan_deadline_seconds" in str(line["error"]) for line in failed)


def test_a_pass_over_its_deadline_is_abandoned_and_counted(
    cli: KeeperCli, proxy: HostileRpc
) -> None:
    proxy.set_rules(TRICKLE)  # the scan deadline (300 s) would come far too late
    result = _run_once(cli, proxy.url, KEEPER_SCHEDULE_PASS_DEADLINE_SECONDS="2")
    assert result.exit_code == 1, result.output
    summary = _summary(result)
    assert summary["errors"] == 3
    assert summary["sent"] == 0
    over = [
        line
        for line in _json_lines(result.stderr)
        if line["event"] == "pass over its deadline: abandoned"
    ]
    assert {line["task"] for line in over} == {"expired_runs", "stopped_jobs", "finished_jobs"}
    assert all("while scanning: nothing sent" in str(line["error"]) for line in over)


def test_the_service_runs_the_next_tick_after_a_pass_over_its_deadline(
    cli: KeeperCli, proxy: HostileRpc, tmp_path: Path
) -> None:
    proxy.set_rules(TRICKLE)
    port = _free_port()
    env = _service_env(
        cli,
        port,
        KEEPER_SCHEDULE_PASS_DEADLINE_SECONDS="2",
        KEEPER_QUIT_INTERVAL_SECONDS="1",
        KEEPER_SCHEDULE_JITTER_SECONDS="0",
        KEEPER_CLEAN_ENABLED="false",
        KEEPER_CLAIM_ENABLED="false",
    )
    command = [sys.executable, "-m", "keeper", "run", "--config", str(LOCAL_PROFILE)]
    command += ["--rpc-url", proxy.url, "--keypair", str(cli.keypair)]
    log_path = tmp_path / "keeper.log"
    metric = 'nosana_keeper_passes_over_deadline_total{task="expired_runs"}'

    def abandoned_twice() -> bool:
        for line in _get(f"http://127.0.0.1:{port}/metrics")[1].splitlines():
            if line.startswith(metric):
                return float(line.split()[-1]) >= 2
        return False

    with log_path.open("wb") as log_file:
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log_file)
        try:
            _wait_for(abandoned_twice, limit=60)
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    lines = _json_lines(log_path.read_text())  # APScheduler's lines are JSON too
    over = [line for line in lines if line["event"] == "pass over its deadline: abandoned"]
    assert len(over) >= 2
    skipped = [line for line in lines if str(line.get("logger", "")).startswith("apscheduler")]
    assert any("maximum number of running instances" in str(line["event"]) for line in skipped)
    assert all(line["level"] == "warning" for line in skipped)


def test_a_pass_over_its_deadline_while_sending_counts_what_is_in_flight(
    cli: KeeperCli,
) -> None:
    # The demo chain's clock stands still: a dropped transaction's blockhash never expires,
    # so only the pass deadline ends the wait.
    cli.chain.set_faults(drop_every=1)
    only_clean = {"KEEPER_QUIT_ENABLED": "false", "KEEPER_CLAIM_ENABLED": "false"}
    result = _run_once(cli, cli.chain.url, KEEPER_SCHEDULE_PASS_DEADLINE_SECONDS="5", **only_clean)
    assert result.exit_code == 1, result.output
    summary = _summary(result)
    lines = _json_lines(result.stderr)
    abandoned = [
        line for line in lines if line["event"] == "transaction abandoned: it may still land"
    ]
    assert abandoned
    # Every transaction out is counted once, as abandoned: none lost, none half-counted.
    assert summary["tasks"]["finished_jobs"]["transactions"] == len(abandoned)  # type: ignore[index]
    assert summary["sent"] == sum(int(str(line["actions"])) for line in abandoned)
    assert summary["confirmed"] == 0
    assert summary["failed"] == summary["sent"]
    over = [line for line in lines if line["event"] == "pass over its deadline: abandoned"]
    assert len(over) == 1
    assert "while sending" in str(over[0]["error"])
