"""The census of every job runs on its own cadence; passes in between scan per market only.

Driven in-process (the Keeper the CLI builds) against the demo world over HTTP, so the
test can count the census sweeps and close a market between passes.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from keeper.localnet.chain import LocalChain
from keeper.localnet.standalone import write_keypairs
from keeper.service import discovery
from keeper.service.metrics import Metrics
from keeper.service.runner import Keeper
from keeper.service.settings import load_settings
from keeper.tasks.plan import Task

from .conftest import LOCAL_PROFILE, keeper_env

HOUR = 3600


@pytest.fixture
def census_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real: Callable[[discovery.Scope], Awaitable[discovery.Census]] = discovery.job_census

    async def counted(scope: discovery.Scope) -> discovery.Census:
        calls.append(1)
        return await real(scope)

    monkeypatch.setattr(discovery, "job_census", counted)
    return calls


@pytest.fixture
async def keeper(
    demo_chain: LocalChain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Keeper]:
    """A started Keeper on the demo world (census every hour), closed after the test."""
    keys = write_keypairs(demo_chain.world, tmp_path / "keys")
    for name, value in keeper_env(demo_chain, claim=False).items():
        monkeypatch.setenv(name, value)
    settings = load_settings(
        LOCAL_PROFILE,
        {
            "rpc": {"url": demo_chain.url},
            "keypair": keys["keeper"],
            "clean": {"census_interval_seconds": HOUR},
        },
    )
    started = Keeper(settings, Metrics(CollectorRegistry()))
    await started.start()
    try:
        yield started
    finally:
        await started.close()


async def test_between_censuses_a_pass_skips_the_sweep_and_still_sees_a_market_close(
    demo_chain: LocalChain, keeper: Keeper, census_calls: list[int]
) -> None:
    world = demo_chain.world
    waiting = world.labels["done_not_expired_gated"]
    first = await keeper.run_task(Task.FINISHED_JOBS)
    assert not first.errors
    assert len(census_calls) == 1
    assert first.confirmed == first.planned > 0
    assert demo_chain.get_account(waiting) is not None  # not yet expired: left alone

    # The admin closes the gated market: its Done job may now be closed by cleanAdmin.
    assert demo_chain.close_account(world.labels["market_gated"])
    second = await keeper.run_task(Task.FINISHED_JOBS)
    assert not second.errors
    assert len(census_calls) == 1  # no sweep of every job: the remembered markets
    assert second.confirmed == second.planned == 1
    assert demo_chain.get_account(waiting) is None

    # An hour of monotonic time later, the census is due again.
    assert keeper.census_at is not None
    keeper.census_at = time.monotonic() - HOUR
    third = await keeper.run_task(Task.FINISHED_JOBS)
    assert not third.errors
    assert len(census_calls) == 2
    assert third.planned == 0


async def test_a_failed_pass_keeps_the_census_due(
    demo_chain: LocalChain, keeper: Keeper, census_calls: list[int]
) -> None:
    demo_chain.set_faults(server_error_next=1_000)
    failed = await keeper.run_task(Task.FINISHED_JOBS)
    assert failed.errors
    assert keeper.market_memory is None
    demo_chain.clear_faults()
    report = await keeper.run_task(Task.FINISHED_JOBS)
    assert not report.errors
    assert census_calls  # the sweep ran on the pass that succeeded
    assert keeper.market_memory is not None
