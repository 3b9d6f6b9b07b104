"""An RPC is not trusted blindly: a clock far ahead pauses time-based actions, a verify
endpoint must agree before admin actions, reads fail over, sends reach every send URL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from keeper.localnet.chain import LocalChain
from keeper.localnet.standalone import write_keypairs
from keeper.program.layouts import decode_job
from keeper.service.cli import main
from tests.hostile_rpc import CLOCK_SYSVAR, HostileRpc, Rule, clock_ahead, hide_accounts
from tests.integration.conftest import LOCAL_PROFILE, KeeperCli, keeper_env
from tests.integration.probe import free_port, get, wait_for

DAY = 86_400
GUARD_ON = {"KEEPER_CHAIN_MAX_CLOCK_LEAD_SECONDS": "120"}  # the profile relaxes it: see there
FAST_FAILOVER = {"KEEPER_RPC_MAX_RETRIES": "0"}


def invoke(cli: KeeperCli, *args: str, rpc_url: str, env: dict[str, str] | None = None) -> Result:
    """``nosana-keeper <args>`` with ``rpc_url`` as the (first) read endpoint."""
    command = [*args, "--config", str(LOCAL_PROFILE), "--rpc-url", rpc_url]
    command += ["--keypair", str(cli.keypair)]
    return CliRunner().invoke(main, command, env={**cli.env, **(env or {})})


def summary(result: Result) -> dict[str, object]:
    parsed: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])["summary"]
    return parsed


def skipped(result: Result, task: str) -> dict[str, int]:
    tasks = summary(result)["tasks"]
    assert isinstance(tasks, dict)
    return dict(tasks[task]["skipped"])


def keys_expecting(chain: LocalChain, *outcomes: str) -> list[str]:
    return [
        label for label, outcome in chain.world.expectations.items() if outcome in set(outcomes)
    ]


def _data(chain: LocalChain, label: str) -> bytes:
    account = chain.get_account(chain.world.labels[label])
    assert account is not None
    return account.data


def exists(chain: LocalChain, label: str) -> bool:
    return chain.get_account(chain.world.labels[label]) is not None


@pytest.fixture
def wall_clock_cli(tmp_path: Path) -> Iterator[KeeperCli]:
    """The demo world built at this machine's time, as a real cluster's clock would be."""
    with LocalChain.run_in_thread(
        "demo", port=0, auto_advance=False, unix_timestamp=int(time.time())
    ) as chain:
        paths = write_keypairs(chain.world, tmp_path / "keys")
        yield KeeperCli(chain, paths["keeper"], keeper_env(chain))


# -- a lying clock --------------------------------------------------------------------------


def test_a_clock_30_days_ahead_quits_no_live_run_and_cleans_no_job(
    wall_clock_cli: KeeperCli,
) -> None:
    chain = wall_clock_cli.chain
    live_runs = keys_expecting(chain, "quitAdmin:run_timed_out", "leave:run_not_timed_out")
    timeless_quits = keys_expecting(chain, "quitAdmin:run_job_done", "quitAdmin:run_job_missing")
    expired = keys_expecting(chain, "clean:job_expired")
    assert live_runs
    assert timeless_quits
    assert expired
    with HostileRpc.run_in_thread(chain.url) as proxy:
        proxy.set_rules(Rule(rewrite=clock_ahead(30 * DAY)))
        result = invoke(wall_clock_cli, "run", "--once", rpc_url=proxy.url, env=GUARD_ON)
    assert result.exit_code == 0, result.output
    assert all(exists(chain, label) for label in live_runs)  # 30 days "late": none quit
    assert all(exists(chain, label) for label in expired)  # clean's expiry waits too
    # quitAdmin for a run whose job is Done or gone reads no time: it proceeds.
    assert not any(exists(chain, label) for label in timeless_quits)
    assert skipped(result, "expired_runs")["clock_ahead"] == len(live_runs)
    assert skipped(result, "finished_jobs")["clock_ahead"] >= len(expired)
    paused = [
        json.loads(line)
        for line in result.stderr.splitlines()
        if '"time-based actions paused"' in line
    ]
    assert paused
    assert paused[0]["cause"] == "clock_ahead"
    assert paused[0]["lead_s"] > 29 * DAY


def _reads_clock(request: dict[str, object]) -> bool:
    params = request.get("params")
    return isinstance(params, list) and bool(params) and params[0] == CLOCK_SYSVAR


def test_a_clock_that_jumps_ahead_after_planning_is_caught_before_sending(
    wall_clock_cli: KeeperCli,
) -> None:
    """The veto holds on the re-read just before sending, not only when planning."""
    chain = wall_clock_cli.chain
    timed_out = keys_expecting(chain, "quitAdmin:run_timed_out")
    assert timed_out
    env = {**GUARD_ON, "KEEPER_CLEAN_ENABLED": "false", "KEEPER_CLAIM_ENABLED": "false"}
    with HostileRpc.run_in_thread(chain.url) as proxy:
        proxy.set_rules(
            Rule(method="getAccountInfo", when=_reads_clock, times=1),  # the plan's: honest
            Rule(rewrite=clock_ahead(30 * DAY)),  # every later read: 30 days ahead
        )
        result = invoke(wall_clock_cli, "run", "--once", rpc_url=proxy.url, env=env)
    assert result.exit_code == 0, result.output
    assert all(exists(chain, label) for label in timed_out)
    tasks = summary(result)["tasks"]
    assert isinstance(tasks, dict)
    assert tasks["expired_runs"]["planned"] >= len(timed_out)  # planned on the honest clock
    assert skipped(result, "expired_runs")["clock_ahead"] == len(timed_out)


def test_the_same_world_without_the_lie_is_resolved(wall_clock_cli: KeeperCli) -> None:
    """The control: the guard does not stop an honest clock close to this machine's."""
    chain = wall_clock_cli.chain
    result = invoke(wall_clock_cli, "run", "--once", rpc_url=chain.url, env=GUARD_ON)
    assert result.exit_code == 0, result.output
    assert not any(
        exists(chain, label) for label in keys_expecting(chain, "quitAdmin:run_timed_out")
    )
    assert "clock_ahead" not in skipped(result, "expired_runs")


def test_the_service_reports_the_pause_in_metrics_and_readiness(
    wall_clock_cli: KeeperCli,
) -> None:
    cli = wall_clock_cli
    port = free_port()
    with HostileRpc.run_in_thread(cli.chain.url) as proxy:
        proxy.set_rules(Rule(rewrite=clock_ahead(30 * DAY)))
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("KEEPER_")},
            **cli.env,
            **GUARD_ON,
            "KEEPER_METRICS_PORT": str(port),
            "KEEPER_METRICS_HOST": "127.0.0.1",
            "KEEPER_SCHEDULE_JITTER_SECONDS": "0",
        }
        command = [sys.executable, "-m", "keeper", "run", "--config", str(LOCAL_PROFILE)]
        command += ["--rpc-url", proxy.url, "--keypair", str(cli.keypair)]
        service = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        try:
            base = f"http://127.0.0.1:{port}"
            paused = 'nosana_keeper_time_based_actions_paused{cause="clock_ahead"} 1.0'
            wait_for(lambda: paused in get(f"{base}/metrics")[1], 90.0)
            metrics = get(f"{base}/metrics")[1]
            lead = next(
                line
                for line in metrics.splitlines()
                if line.startswith("nosana_keeper_chain_clock_lead_seconds ")
            )
            assert float(lead.split()[1]) > 29 * DAY
            status, body = get(f"{base}/readyz")
            assert status == 503
            assert "time-based actions paused" in json.loads(body)["failing"]["chain_clock"]
        finally:
            service.send_signal(signal.SIGTERM)
            _out, stderr = service.communicate(timeout=60)
    assert service.returncode == 0, stderr
    assert "time-based actions paused" in stderr


# -- a lying RPC and verify endpoints -------------------------------------------------------


def test_a_hidden_live_market_gets_no_clean_admin_when_a_verify_endpoint_sees_it(
    cli: KeeperCli,
) -> None:
    chain = cli.chain
    market = chain.world.labels["market_open"]
    of_market = [
        label
        for label in keys_expecting(chain, "clean:job_expired", "leave:not_expired")
        if decode_job(_data(chain, label)).market == market
    ]
    unexpired = keys_expecting(chain, "leave:not_expired")
    assert set(unexpired) & set(of_market)
    verify = {"KEEPER_RPC_VERIFY_URLS": json.dumps([chain.url])}
    with HostileRpc.run_in_thread(chain.url) as proxy:
        proxy.set_rules(Rule(rewrite=hide_accounts(str(market))))
        result = invoke(cli, "run", "--once", rpc_url=proxy.url, env=verify)
    assert result.exit_code == 0, result.output
    assert all(exists(chain, label) for label in of_market)  # every Done job of the market
    # The read endpoint did claim the market was gone: each job was withheld, not missed.
    assert skipped(result, "finished_jobs")["verify_disagrees"] == len(of_market)
    # Markets that are gone there too are still cleaned up.
    assert not any(
        exists(chain, label) for label in keys_expecting(chain, "cleanAdmin:market_gone")
    )
    assert "no rpc.verify_urls" not in result.stderr


def test_admin_actions_wait_while_the_verify_endpoint_is_down(cli: KeeperCli) -> None:
    chain = cli.chain
    with HostileRpc.run_in_thread(chain.url) as down:
        down.set_rules(Rule(status=503))
        env = {"KEEPER_RPC_VERIFY_URLS": json.dumps([down.url]), **FAST_FAILOVER}
        result = invoke(cli, "run", "--once", rpc_url=chain.url, env=env)
    assert result.exit_code == 0, result.output
    admin = keys_expecting(chain, "cleanAdmin:market_gone", "quitAdmin:run_timed_out")
    admin += keys_expecting(chain, "quitAdmin:run_job_done", "quitAdmin:run_job_missing")
    assert all(exists(chain, label) for label in admin)
    assert not any(exists(chain, label) for label in keys_expecting(chain, "clean:job_expired"))
    assert skipped(result, "finished_jobs")["verify_unavailable"] == 2
    assert "verify endpoint failed" in result.stderr


def test_without_verify_endpoints_start_up_and_check_say_so(cli: KeeperCli) -> None:
    chain = cli.chain
    result = invoke(cli, "run", "--once", "--dry-run", rpc_url=chain.url)
    assert result.exit_code == 0, result.output
    warnings = [
        json.loads(line) for line in result.stderr.splitlines() if "no rpc.verify_urls" in line
    ]
    assert warnings
    assert warnings[0]["level"] == "warning"
    check = invoke(cli, "check", rpc_url=chain.url)
    assert check.exit_code == 0, check.output
    row = next(line for line in check.stdout.splitlines() if line.split()[1:2] == ["verify"])
    assert "no rpc.verify_urls" in row
    assert "cleanAdmin" in row


def test_check_names_each_endpoint_and_fails_an_unreachable_one(cli: KeeperCli) -> None:
    chain = cli.chain
    with HostileRpc.run_in_thread(chain.url) as down:
        down.set_rules(Rule(status=503))
        env = {
            "KEEPER_RPC_VERIFY_URLS": json.dumps([chain.url]),
            "KEEPER_RPC_SEND_URLS": json.dumps([down.url]),
            **FAST_FAILOVER,
        }
        check = invoke(cli, "check", rpc_url=chain.url, env=env)
    assert check.exit_code == 2, check.output
    rows = {line.split()[1]: line.split()[0] for line in check.stdout.splitlines()}
    assert rows["rpc.verify_urls[0]"] == "ok"
    assert rows["rpc.send_urls[0]"] == "FAIL"
    assert "verify" not in rows


# -- an endpoint down, several send endpoints ------------------------------------------------


def test_reads_fail_over_when_the_first_endpoint_fails(cli: KeeperCli) -> None:
    chain = cli.chain
    expected = {
        outcome.split(":")[0]
        for outcome in chain.world.expectations.values()
        if not outcome.startswith("leave")
    }
    with HostileRpc.run_in_thread(chain.url) as first:
        first.set_rules(Rule(status=503))
        env = {"KEEPER_RPC_URLS": json.dumps([chain.url]), **FAST_FAILOVER}
        result = invoke(cli, "run", "--once", rpc_url=first.url, env=env)
        check = invoke(cli, "check", rpc_url=first.url, env=env)
    assert result.exit_code == 0, result.output
    rows = {line.split()[1]: line.split()[0] for line in check.stdout.splitlines()}
    assert rows["rpc"] == "ok"  # the keeper can read: through the second endpoint
    assert rows["rpc.url"] == "FAIL"
    assert rows["rpc.urls[0]"] == "ok"
    assert check.exit_code == 2
    assert summary(result)["errors"] == 0
    closed = {
        outcome.split(":")[0]
        for label, outcome in chain.world.expectations.items()
        if outcome.split(":")[0] in {"clean", "cleanAdmin", "quitAdmin"}
        and not exists(chain, label)
    }
    assert closed == expected - {"claim"}
    failed = [json.loads(line) for line in result.stderr.splitlines() if "endpoint failed" in line]
    assert failed
    assert failed[0]["endpoint"] == 0


def test_every_transaction_reaches_every_send_url(cli: KeeperCli) -> None:
    chain = cli.chain
    with (
        HostileRpc.run_in_thread(chain.url) as send_a,
        HostileRpc.run_in_thread(chain.url) as send_b,
    ):
        env = {"KEEPER_RPC_SEND_URLS": json.dumps([send_a.url, send_b.url])}
        result = invoke(cli, "run", "--once", rpc_url=chain.url, env=env)
        sent = [
            {call["params"][0] for call in proxy.calls if call.get("method") == "sendTransaction"}
            for proxy in (send_a, send_b)
        ]
    assert result.exit_code == 0, result.output
    transactions = summary(result)["tasks"]
    assert isinstance(transactions, dict)
    landed = sum(task["transactions"] for task in transactions.values())
    assert landed > 0
    assert sent[0] == sent[1]
    assert len(sent[0]) >= landed
