"""One read of each account kind per pass, bounded plans, and answers not trusted blindly.

The real CLI runs in-process against the local chain through the hostile-RPC proxy, which
records every request: the getProgramAccounts a pass makes are counted there.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

from keeper.localnet.chain import LocalChain
from keeper.localnet.standalone import write_keypairs
from keeper.localnet.worlds import load_world
from keeper.service import cli as cli_module
from keeper.service.cli import main
from keeper.service.metrics import Metrics, new_metrics
from tests.hostile_rpc import HostileRpc, Json, Rule, duplicate_first_account, truncate_data

from .conftest import LOCAL_PROFILE, keeper_env

GPA = "getProgramAccounts"


@pytest.fixture
def keeper_metrics(monkeypatch: pytest.MonkeyPatch) -> list[Metrics]:
    """The Metrics of every keeper the CLI starts in this test, to read after it exits."""
    made: list[Metrics] = []

    def capture() -> Metrics:
        metrics = new_metrics()
        made.append(metrics)
        return metrics

    monkeypatch.setattr(cli_module, "new_metrics", capture)
    return made


@pytest.fixture
def proxy(demo_chain: LocalChain) -> Iterator[HostileRpc]:
    with HostileRpc.run_in_thread(demo_chain.url) as hostile:
        yield hostile


def run(
    chain: LocalChain,
    url: str,
    keys: Path,
    *args: str,
    env: dict[str, str] | None = None,
    claim: bool = True,
) -> Result:
    """``nosana-keeper run ARGS`` against ``url`` with the world's keeper keypair."""
    keypair = write_keypairs(chain.world, keys)["keeper"]
    command = ["run", *args, "--config", str(LOCAL_PROFILE), "--rpc-url", url]
    command += ["--keypair", str(keypair)]
    return CliRunner().invoke(main, command, env={**keeper_env(chain, claim=claim), **(env or {})})


def lines(result: Result) -> list[dict[str, object]]:
    """Every JSON line of stdout (dry-run actions, waiting lines, the summary)."""
    return [json.loads(line) for line in result.stdout.strip().splitlines()]


def actions(result: Result, task: str | None = None) -> list[dict[str, object]]:
    return [line for line in lines(result) if "action" in line and task in {None, line.get("task")}]


def events(result: Result, event: str) -> list[dict[str, object]]:
    found = []
    for line in result.stderr.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("event") == event:
            found.append(entry)
    return found


def stats(chain: LocalChain, method: str) -> dict[str, object]:
    """The chain's own counters of the node's work (a control method)."""
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": []}
    answer: dict[str, object] = httpx.post(chain.url, json=body, timeout=30).json()["result"]
    return answer


# Start-up confirms the program holds MarketAccounts: one key-only getProgramAccounts.
STARTUP_SCANS = 1


def _startup_check(call: dict[str, Any]) -> bool:
    config = call["params"][1]
    return config.get("dataSlice", {}).get("length") == 0 and len(config.get("filters", [])) == 1


def pass_scans(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The getProgramAccounts requests of the passes (not the start-up check's)."""
    scans = [call for call in calls if call.get("method") == GPA]
    startup = [call for call in scans if _startup_check(call)]
    assert len(startup) == STARTUP_SCANS
    return [call for call in scans if not _startup_check(call)]


def summary(result: Result) -> dict[str, object]:
    parsed: dict[str, object] = lines(result)[-1]["summary"]  # type: ignore[assignment]
    return parsed


# -- one read of each account kind ---------------------------------------------------------


@pytest.mark.parametrize("markets", [2, 12])
def test_a_full_pass_makes_three_scans_whatever_the_number_of_markets(
    markets: int, tmp_path: Path
) -> None:
    world = load_world("scale", jobs=3_000, markets=markets, due_fraction=0.5)
    with (
        LocalChain.run_in_thread(world, port=0, auto_advance=False) as chain,
        HostileRpc.run_in_thread(chain.url) as hostile,
    ):
        stats(chain, "localnet_resetStats")
        result = run(chain, hostile.url, tmp_path / "keys", "--once", "--dry-run", claim=False)
        assert result.exit_code == 0, result.output
        assert len(pass_scans(hostile.calls)) == 3
        # The chain counts the start-up check's key-only read of the markets too.
        counted = stats(chain, "localnet_getStats")  # the chain's own count agrees
        assert counted["calls"][GPA] == 3 + STARTUP_SCANS  # type: ignore[index]
        # One walk of the program's accounts per kind, however many markets.
        walks = 3 + STARTUP_SCANS
        assert counted["accountsVisited"][GPA] == walks * (3_000 + markets)  # type: ignore[index]
        assert len(actions(result)) == 1_500  # every due job, under the default cap
        finished = summary(result)["tasks"]["finished_jobs"]  # type: ignore[index]
        assert finished["planned"] == 1_500


def test_every_task_in_one_pass_shares_the_three_scans(
    demo_chain: LocalChain, proxy: HostileRpc, tmp_path: Path
) -> None:
    result = run(demo_chain, proxy.url, tmp_path / "keys", "--once", "--dry-run")
    assert result.exit_code == 0, result.output
    tasks = {line["task"] for line in actions(result)}
    assert tasks == {"expired_runs", "stopped_jobs", "finished_jobs"}
    scans = pass_scans(proxy.calls)
    assert len(scans) == 3
    kinds = {json.dumps(call["params"][1]["filters"][0]) for call in scans}
    assert len(kinds) == 3  # markets, runs, jobs: one each, never a query per market


def test_a_task_alone_reads_only_the_kinds_it_needs(
    demo_chain: LocalChain, proxy: HostileRpc, tmp_path: Path
) -> None:
    only_quit = {"KEEPER_CLEAN_ENABLED": "false"}
    result = run(
        demo_chain, proxy.url, tmp_path / "k", "--once", "--dry-run", env=only_quit, claim=False
    )
    assert result.exit_code == 0, result.output
    assert {line["task"] for line in actions(result)} == {"expired_runs"}
    assert len(pass_scans(proxy.calls)) == 1  # the runs; their jobs by getMultipleAccounts


def test_the_census_comes_from_the_same_read(
    demo_chain: LocalChain, proxy: HostileRpc, tmp_path: Path, keeper_metrics: list[Metrics]
) -> None:
    result = run(demo_chain, proxy.url, tmp_path / "keys", "--once", "--dry-run")
    assert result.exit_code == 0, result.output
    metrics = keeper_metrics[0]
    assert metrics.registry.get_sample_value("nosana_keeper_orphan_jobs") == 4
    assert metrics.registry.get_sample_value("nosana_keeper_legacy_jobs") == 1
    skipped = summary(result)["tasks"]["finished_jobs"]["skipped"]  # type: ignore[index]
    assert skipped["legacy_layout"] == 1
    assert skipped["unknown_state"] >= 1
    assert skipped["undecodable"] >= 1  # the 100-byte job: too short for the read's slice


def test_census_interval_is_deprecated_but_still_accepted(
    demo_chain: LocalChain, proxy: HostileRpc, tmp_path: Path
) -> None:
    old = {"KEEPER_CLEAN_CENSUS_INTERVAL_SECONDS": "3600"}
    result = run(demo_chain, proxy.url, tmp_path / "keys", "--once", "--dry-run", env=old)
    assert result.exit_code == 0, result.output
    assert events(result, "clean.census_interval_seconds is deprecated and ignored")


# -- the backlog cap ------------------------------------------------------------------------


def test_the_cap_keeps_the_earliest_due_and_the_dry_run_is_the_real_plan(
    demo_chain: LocalChain, tmp_path: Path, keeper_metrics: list[Metrics]
) -> None:
    capped = {"KEEPER_CLEAN_MAX_ACTIONS_PER_PASS": "3"}
    keys = tmp_path / "keys"
    everything = run(demo_chain, demo_chain.url, keys, "--once", "--dry-run", claim=False)
    due = actions(everything, "finished_jobs")
    assert len(due) == 9  # 7 clean + 2 cleanAdmin

    dry = run(demo_chain, demo_chain.url, keys, "--once", "--dry-run", env=capped, claim=False)
    assert dry.exit_code == 0, dry.output
    planned = actions(dry, "finished_jobs")
    assert len(planned) == 3
    assert {p["account"] for p in planned} < {d["account"] for d in due}
    (waiting,) = [line["waiting"] for line in lines(dry) if "waiting" in line]
    assert waiting["task"] == "finished_jobs"  # type: ignore[index]
    assert waiting["actions"] == 6  # type: ignore[index]
    assert summary(dry)["tasks"]["finished_jobs"]["waiting"] == 6  # type: ignore[index]
    backlog = keeper_metrics[1].registry.get_sample_value
    waiting_total = sum(
        backlog("nosana_keeper_backlog_actions", {"task": "finished_jobs", "reason": reason}) or 0
        for reason in ("job_expired", "market_gone")
    )
    assert waiting_total == 6
    lamports = waiting["lamports"]  # type: ignore[index]
    assert lamports == sum(int(d["lamports"]) for d in due) - sum(
        int(p["lamports"]) for p in planned
    )

    real = run(demo_chain, demo_chain.url, keys, "--once", env=capped, claim=False)
    assert real.exit_code == 0, real.output
    sent = {e["account"] for e in events(real, "action confirmed") if e["task"] == "finished_jobs"}
    assert sent == {p["account"] for p in planned}  # exactly the plan the dry run printed
    assert summary(real)["tasks"]["finished_jobs"]["waiting"] == 6  # type: ignore[index]


# -- answers not trusted blindly ------------------------------------------------------------


def _sliced(request: Json) -> bool:
    params = request.get("params") or []
    return len(params) > 1 and "dataSlice" in params[1]


def test_an_rpc_that_ignores_data_slice_fails_the_pass_loudly(
    demo_chain: LocalChain, proxy: HostileRpc, tmp_path: Path
) -> None:
    # Every sliced scan answered with whole 240-byte accounts, as if dataSlice were unknown.
    proxy.set_rules(Rule(method=GPA, when=_sliced, rewrite=truncate_data(240)))
    result = run(demo_chain, proxy.url, tmp_path / "keys", "--once", "--dry-run", claim=False)
    assert result.exit_code == 1, result.output
    (failed,) = [e for e in events(result, "pass failed") if e["task"] == "finished_jobs"]
    assert "ignores dataSlice" in str(failed["error"])
    assert summary(result)["tasks"]["finished_jobs"]["errors"]  # type: ignore[index]


def test_short_data_is_undecodable_and_most_of_it_fails_the_pass(
    demo_chain: LocalChain, proxy: HostileRpc, tmp_path: Path
) -> None:
    proxy.set_rules(Rule(method=GPA, when=_sliced, rewrite=truncate_data(7)))
    result = run(demo_chain, proxy.url, tmp_path / "keys", "--once", "--dry-run", claim=False)
    assert result.exit_code == 1, result.output
    assert not actions(result, "finished_jobs")
    assert any("are not 145 bytes" in str(e["error"]) for e in events(result, "pass failed"))


def test_a_duplicate_entry_is_dropped_and_counted_not_a_crash(
    demo_chain: LocalChain, proxy: HostileRpc, tmp_path: Path, keeper_metrics: list[Metrics]
) -> None:
    keys = tmp_path / "keys"
    honest = run(demo_chain, proxy.url, keys, "--once", "--dry-run")
    proxy.set_rules(Rule(method=GPA, rewrite=duplicate_first_account()))
    doubled = run(demo_chain, proxy.url, keys, "--once", "--dry-run")
    assert doubled.exit_code == 0, doubled.output
    assert actions(doubled) == actions(honest)  # the same plan, nothing twice
    assert summary(doubled)["tasks"] == summary(honest)["tasks"]
    counted = keeper_metrics[1].registry.get_sample_value
    assert counted("nosana_keeper_scan_duplicates_total", {"kind": "job"}) == 1
    assert counted("nosana_keeper_scan_duplicates_total", {"kind": "run"}) == 1
    assert counted("nosana_keeper_scan_duplicates_total", {"kind": "market"}) == 1

    # And for real: every task sends (a duplicate target once stopped the packer).
    real = run(demo_chain, proxy.url, keys, "--once")
    assert real.exit_code == 0, real.output
    done = summary(real)
    assert done["errors"] == 0
    assert done["confirmed"] == done["planned"] == len(actions(honest))


def test_a_market_closed_between_passes_is_seen_on_the_next(
    demo_chain: LocalChain, tmp_path: Path
) -> None:
    world = demo_chain.world
    waiting = world.labels["done_not_expired_gated"]
    keys = tmp_path / "keys"
    first = run(demo_chain, demo_chain.url, keys, "--once", claim=False)
    assert first.exit_code == 0, first.output
    assert demo_chain.get_account(waiting) is not None  # not yet expired: left alone
    # The admin closes the gated market: its Done job may now be closed by cleanAdmin.
    assert demo_chain.close_account(world.labels["market_gated"])
    second = run(demo_chain, demo_chain.url, keys, "--once", claim=False)
    assert second.exit_code == 0, second.output
    finished = summary(second)["tasks"]["finished_jobs"]  # type: ignore[index]
    assert finished["confirmed"] == finished["planned"] == 1
    assert demo_chain.get_account(waiting) is None
