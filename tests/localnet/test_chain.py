"""LocalChain: the async and threaded ways to run a chain, and its controls."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from toy_chain import ToyProgram, build_toy_world

from keeper.errors import ConfigError
from keeper.localnet.chain import LocalChain
from keeper.localnet.clock import GENESIS_SLOT
from keeper.localnet.ledger import UPGRADEABLE_LOADER


def get_slot(url: str) -> int:
    body = {"jsonrpc": "2.0", "id": 1, "method": "getSlot"}
    return httpx.post(url, json=body).json()["result"]


def test_a_chain_in_a_thread_serves_synchronous_callers():
    with LocalChain.run_in_thread(
        build_toy_world(), auto_advance=False, programs=[ToyProgram()]
    ) as chain:
        assert get_slot(chain.url) == GENESIS_SLOT

        chain.advance_slots(7)
        chain.set_clock(2_000_000_000)

        assert get_slot(chain.url) == GENESIS_SLOT + 7
        assert chain.unix_timestamp == 2_000_000_000
        url = chain.url

    with pytest.raises(httpx.ConnectError):
        get_slot(url)


def test_a_chain_in_a_thread_reports_a_failed_start_to_the_caller():
    with (
        pytest.raises(ConfigError, match="unknown world"),
        LocalChain.run_in_thread("no-such-world"),
    ):
        pass


async def test_the_ticker_advances_slots_by_itself():
    async with LocalChain.start(build_toy_world(), slot_ms=5, programs=[ToyProgram()]) as chain:
        for _ in range(400):  # bounded wait: at most ~4 s
            if chain.slot > GENESIS_SLOT + 2:
                break
            await asyncio.sleep(0.01)
        assert chain.slot > GENESIS_SLOT + 2


async def test_without_the_ticker_slots_move_only_on_request():
    async with LocalChain.start(
        build_toy_world(), slot_ms=5, auto_advance=False, programs=[ToyProgram()]
    ) as chain:
        await asyncio.sleep(0.05)
        assert chain.slot == GENESIS_SLOT


async def test_a_named_world_runs_the_jobs_program():
    async with LocalChain.start("demo", auto_advance=False) as chain:
        program = chain.get_account(chain.world.program_id)

        assert program is not None
        assert program.executable
        assert program.owner == UPGRADEABLE_LOADER
        assert chain.world.program_id in chain.runtime.programs
