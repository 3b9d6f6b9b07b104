"""Each fault switch of the local chain, met by the real CLI over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from keeper.localnet.chain import LocalChain
from keeper.localnet.standalone import write_keypairs
from keeper.service.execution import SEND_ATTEMPTS
from tests.integration.conftest import KeeperCli, keeper_env, snapshot


def _log(result_stderr: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in result_stderr.splitlines() if line.startswith("{")]


def _planned(result_stdout: str) -> set[tuple[str, str]]:
    lines = result_stdout.strip().splitlines()[:-1]
    return {(entry["account"], entry["action"]) for entry in map(json.loads, lines)}


@pytest.fixture
def fast_chain() -> Iterator[LocalChain]:
    """Slots every 20 ms: a blockhash expires (150 blocks) in about three seconds."""
    with LocalChain.run_in_thread("demo", port=0, slot_ms=20) as chain:
        yield chain


@pytest.fixture
def fast_cli(fast_chain: LocalChain, tmp_path: Path) -> KeeperCli:
    paths = write_keypairs(fast_chain.world, tmp_path / "keys")
    env = keeper_env(fast_chain) | {"KEEPER_RPC_MAX_RETRIES": "8"}
    return KeeperCli(fast_chain, paths["keeper"], env)


def test_rate_limited_rpc_is_retried_to_the_same_plan(cli: KeeperCli) -> None:
    clean = cli.invoke("run", "--once", "--dry-run")
    cli.chain.set_faults(rate_limit_every=3, retry_after_seconds=0)
    limited = cli.invoke("run", "--once", "--dry-run")
    assert limited.exit_code == 0, limited.output
    assert _planned(limited.stdout) == _planned(clean.stdout)
    assert "HTTP 429" in limited.stderr  # the retries were real, and logged


def test_server_errors_are_retried_to_the_same_plan(cli: KeeperCli) -> None:
    clean = cli.invoke("run", "--once", "--dry-run")
    cli.chain.set_faults(server_error_every=4)
    flaky = cli.invoke("run", "--once", "--dry-run")
    assert flaky.exit_code == 0, flaky.output
    assert _planned(flaky.stdout) == _planned(clean.stdout)


def test_persistent_server_errors_fail_the_pass_not_the_process(cli: KeeperCli) -> None:
    cli.chain.set_faults(server_error_every=1)
    result = cli.invoke("run", "--once", extra_env={"KEEPER_RPC_MAX_RETRIES": "1"})
    # The start-up check cannot reach the RPC: one clear message, exit code 2, nothing signed.
    assert result.exit_code == 2
    assert "error:" in result.stderr
    assert "fix:" in result.stderr


def test_transaction_accepted_but_never_landed_is_resent(fast_cli: KeeperCli) -> None:
    fast_cli.chain.set_faults(drop_next=1)
    result = fast_cli.invoke("run", "--once")
    assert result.exit_code == 0, result.output
    summary = fast_cli.summary(result)
    assert summary["failed"] == 0
    assert summary["confirmed"] == summary["planned"]


def test_expired_blockhash_then_the_next_pass_rebuilds(fast_cli: KeeperCli) -> None:
    chain = fast_cli.chain
    chain.set_faults(drop_every=1)  # nothing lands: every transaction's blockhash expires
    first = fast_cli.invoke("run", "--once")
    assert first.exit_code == 1, first.output  # every action expired: a failure
    assert fast_cli.summary(first)["confirmed"] == 0
    assert fast_cli.summary(first)["failed"] > 0
    chain.clear_faults()
    second = fast_cli.invoke("run", "--once")
    assert second.exit_code == 0, second.output
    assert fast_cli.summary(second)["failed"] == 0
    assert fast_cli.summary(second)["confirmed"] > 0


def test_competitor_closing_first_is_a_skip_not_an_error(cli: KeeperCli) -> None:
    chain = cli.chain
    cli.invoke("run", "--once", "--dry-run")
    chain.set_faults(competitor_next=1)
    result = cli.invoke("run", "--once")
    assert result.exit_code == 0, result.output
    summary = cli.summary(result)
    assert summary["errors"] == 0
    assert summary["failed"] == 0
    skipped = {
        reason: count
        for task in summary["tasks"].values()  # type: ignore[union-attr]
        for reason, count in task["skipped"].items()
    }
    assert skipped.get("already_closed", 0) >= 1
    # Everything else the world expects was still done.
    assert summary["confirmed"] == summary["planned"] - skipped["already_closed"]
    assert snapshot(chain)  # the chain is alive and consistent


def test_every_send_dropped_ends_at_the_send_retry_window(fast_cli: KeeperCli) -> None:
    fast_cli.chain.set_faults(drop_every=1)
    window = {"KEEPER_SEND_RETRY_WINDOW_SECONDS": "0"}  # expired: never rebuilt this pass
    result = fast_cli.invoke("run", "--once", extra_env=window)
    assert result.exit_code == 1, result.output
    summary = fast_cli.summary(result)
    assert summary["confirmed"] == 0
    assert summary["planned"] > 0
    assert summary["failed"] == summary["planned"]
    closed = [
        e for e in _log(result.stderr) if e["event"] == "send retry window closed: not rebuilding"
    ]
    assert closed
    assert all(entry["attempts"] == 1 < SEND_ATTEMPTS for entry in closed)
    # One transaction per batch, none rebuilt: the window, not SEND_ATTEMPTS, ended them.
    tasks = summary["tasks"].values()  # type: ignore[union-attr]
    assert sum(task["transactions"] for task in tasks) == len(closed)
    assert sum(entry["actions"] for entry in closed) == summary["failed"]


def test_the_tasks_of_run_once_send_concurrently(fast_cli: KeeperCli) -> None:
    fast_cli.chain.set_faults(drop_every=1)  # each task's first send waits ~3 s to expire
    window = {"KEEPER_SEND_RETRY_WINDOW_SECONDS": "0"}
    result = fast_cli.invoke("run", "--once", extra_env=window)
    events = [entry["event"] for entry in _log(result.stderr)]
    planned = [i for i, event in enumerate(events) if event == "pass planned"]
    first_failure = events.index("action failed")
    assert len(planned) == 3
    # Every task had planned before any task's sends ended: none waited for another.
    assert max(planned) < first_failure
