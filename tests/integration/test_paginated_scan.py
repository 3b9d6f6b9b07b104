"""``rpc.scan_method: paginated``: the real CLI walks getProgramAccountsV2 pages to the end
and plans exactly what the standard scan plans; a read of the accounts changed since a
full read's slot returns only those (counted by the chain itself)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
from solders.pubkey import Pubkey

from keeper.chain.pages import ScanMethod
from keeper.chain.rpc import RpcClient
from keeper.localnet.chain import LocalChain
from keeper.service import discovery
from keeper.tasks.finished_jobs import FinishedJobsParams
from keeper.tasks.plan import Task
from tests.hostile_rpc import HostileRpc, Rule

from .test_full_read import GPA, actions, run, stats, summary

V2 = "getProgramAccountsV2"
PAGED = {"KEEPER_RPC_SCAN_METHOD": "paginated", "KEEPER_RPC_SCAN_PAGE_LIMIT": "7"}


def control(chain: LocalChain, method: str, *params: object) -> Any:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    answer = httpx.post(chain.url, json=body, timeout=30).json()
    assert "error" not in answer, answer
    return answer["result"]


def plan_lines(result: Any) -> list[str]:
    return sorted(json.dumps(line, sort_keys=True) for line in actions(result))


def test_a_paginated_dry_run_plans_what_the_standard_one_plans(
    demo_chain: LocalChain, tmp_path: Path
) -> None:
    keys = tmp_path / "keys"
    stats(demo_chain, "localnet_resetStats")
    standard = run(demo_chain, demo_chain.url, keys, "--once", "--dry-run")
    assert standard.exit_code == 0, standard.output
    plain = stats(demo_chain, "localnet_getStats")

    stats(demo_chain, "localnet_resetStats")
    paged = run(demo_chain, demo_chain.url, keys, "--once", "--dry-run", env=PAGED)
    assert paged.exit_code == 0, paged.output
    walked = stats(demo_chain, "localnet_getStats")

    assert plan_lines(paged) == plan_lines(standard)
    assert plan_lines(paged)  # the demo world has work for every task
    assert summary(paged)["tasks"] == summary(standard)["tasks"]
    # Three scans, and the start-up check's key-only read of the markets.
    assert plain["calls"][GPA] == 3 + 1  # type: ignore[index]
    assert GPA not in walked["calls"]  # type: ignore[operator]
    # Pages of 7 over the demo world's program accounts: many requests, some short or
    # empty (every page visits 7 and returns those of the kind asked for)...
    assert walked["calls"][V2] > 3 * 3  # type: ignore[index]
    # ...yet one walk per account kind: the node visits what three plain scans visit.
    assert walked["accountsVisited"][V2] == plain["accountsVisited"][GPA]  # type: ignore[index]


def test_a_provider_without_v2_fails_the_pass_with_the_fix(
    demo_chain: LocalChain, tmp_path: Path
) -> None:
    with HostileRpc.run_in_thread(demo_chain.url) as proxy:
        proxy.set_rules(Rule(method=V2, error={"code": -32601, "message": "Method not found"}))
        result = run(demo_chain, proxy.url, tmp_path / "keys", "--once", "--dry-run", env=PAGED)
    assert "rpc.scan_method: standard" in result.stderr
    assert not actions(result)  # nothing decided from a read that did not happen


# -- a read of the accounts changed since a slot ----------------------------------------


def scope(chain: LocalChain, client: RpcClient) -> discovery.Scope:
    return discovery.Scope(client, chain.world.program_id, 1000, ScanMethod.PAGINATED, page_limit=5)


async def full_then_changed(chain: LocalChain) -> dict[str, Any]:
    labels = chain.world.labels
    market_open, market_gated = labels["market_open"], labels["market_gated"]
    # The world was written at the genesis slot: the full read answers at a later one.
    await asyncio.to_thread(control, chain, "localnet_advanceSlots", 1)
    async with RpcClient(chain.url) as client:
        first = discovery.FullRead()
        async for _batch in discovery.job_batches(scope(chain, client), first):
            pass
        await discovery.read_runs(scope(chain, client), first)
        await discovery.read_markets(scope(chain, client), first)
        since = first.since
        assert since is not None

        await asyncio.to_thread(control, chain, "localnet_advanceSlots", 1)  # changes: later
        posted = await asyncio.to_thread(control, chain, "localnet_postJob", str(market_open))
        started = await asyncio.to_thread(control, chain, "localnet_startJob", posted["job"])
        finished = await asyncio.to_thread(
            control, chain, "localnet_finishJob", str(labels["job_running"])
        )
        await asyncio.to_thread(control, chain, "localnet_closeMarket", str(market_gated))
        await asyncio.to_thread(control, chain, "localnet_resetStats")

        changed = discovery.FullRead()
        jobs = [
            batch
            async for batch in discovery.job_batches(
                scope(chain, client), changed, changed_since=since
            )
        ]
        runs = await discovery.read_runs(scope(chain, client), changed, changed_since=since)
        markets = await discovery.read_markets(scope(chain, client), changed, changed_since=since)
        counted = await asyncio.to_thread(stats, chain, "localnet_getStats")

        clock = await asyncio.to_thread(control, chain, "localnet_getClock")
        request = discovery.PassRequest(
            now=clock["unixTimestamp"] + 60 * 86_400,  # past every market's expiration
            finished_jobs=FinishedJobsParams(is_admin=True),
        )
        decided = await discovery.changed_read(
            scope(chain, client), request, since, jobs_with_runs=()
        )
    return {
        "jobs": {Pubkey.from_bytes(row.tobytes()) for batch in jobs for row in batch.keys},
        "runs": {key for key, _run in runs.runs},
        "markets": set(markets),
        "posted": Pubkey.from_string(posted["job"]),
        "run": Pubkey.from_string(started["run"]),
        "closed_run": Pubkey.from_string(finished["run"]),
        "stats": counted,
        "plan": decided.plans[Task.FINISHED_JOBS][0],
    }


def test_a_changed_since_read_returns_only_the_accounts_written_since(
    demo_chain: LocalChain,
) -> None:
    found = asyncio.run(full_then_changed(demo_chain))
    labels = demo_chain.world.labels
    assert found["jobs"] == {found["posted"], labels["job_running"]}
    # The run finishJob closed is absent: a changed-since read never shows a closed account.
    assert found["runs"] == {found["run"]}
    assert found["closed_run"] not in found["runs"]
    # market_open changed (its queue); the closed market_gated is simply absent.
    assert found["markets"] == {labels["market_open"]}
    returned = found["stats"]["accountsReturned"][V2]
    assert returned == len(found["jobs"]) + len(found["runs"]) + len(found["markets"])
    # The same decisions over the changed accounts: the job just finished is cleaned once
    # expired; the demo world's other due jobs did not change, so they are not in this plan.
    assert {action.account for action in found["plan"].actions} == {labels["job_running"]}
