"""The chain layer against the embedded local chain, over real HTTP: scan, accounts, clock,
fees, and a real ``cleanAdmin`` of a Done job whose market is gone."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import pytest
from fake_rpc import SleepRecorder
from solders.pubkey import Pubkey

from keeper.chain.accounts import get_account, get_balance, get_multiple_accounts
from keeper.chain.clock import chain_time
from keeper.chain.fees import recent_prioritization_fees
from keeper.chain.outcome import BatchResult, SendOutcome
from keeper.chain.rpc import RpcClient
from keeper.chain.scan import count_program_accounts, stream_program_accounts
from keeper.chain.sender import Sender
from keeper.localnet.chain import LocalChain
from keeper.program import filters
from keeper.program.batch import DONE_JOB_SLICE, decode_jobs
from keeper.program.instructions import CleanAdminAccounts, clean_admin
from keeper.program.layouts import JOB_ALLOCATED_SIZE, MARKET_TERMS_SIZE, JobOffset, MarketAccount
from keeper.program.state import JobState
from keeper.service.discovery import Scope, market_terms, market_views
from keeper.tasks.views import ABSENT


@pytest.fixture
async def chain() -> AsyncIterator[LocalChain]:
    async with LocalChain.start("demo", port=0, auto_advance=False) as running:
        yield running


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
async def rpc(chain: LocalChain, sleeps: SleepRecorder) -> AsyncIterator[RpcClient]:
    async with RpcClient(chain.url, timeout_s=10, max_retries=3, sleep=sleeps) as client:
        yield client


def label(chain: LocalChain, name: str) -> Pubkey:
    return chain.world.labels[name]


class SendSignal:
    def __init__(self) -> None:
        self.sent = asyncio.Event()
        self.count = 0

    def transaction_sent(self, *, resend: bool) -> None:
        self.count += 1
        self.sent.set()

    def batch_done(self, result: BatchResult) -> None:
        pass


def sender_for(chain: LocalChain, rpc: RpcClient, observer: SendSignal | None = None) -> Sender:
    return Sender(
        rpc,
        fee_payer=chain.world.keypairs["keeper"],
        program_id=chain.world.program_id,
        observer=observer,
        resend_interval_s=0.0,
        confirm_poll_s=0.01,
    )


async def clean_admin_of(chain: LocalChain, rpc: RpcClient, job_label: str) -> CleanAdminAccounts:
    job = label(chain, job_label)
    account = await get_account(rpc, job)
    assert account is not None
    payer = Pubkey.from_bytes(account.data[JobOffset.PAYER : JobOffset.PAYER + 32])
    return CleanAdminAccounts(job=job, payer=payer, authority=chain.world.market_admin)


async def test_a_done_scan_finds_the_done_jobs(chain: LocalChain, rpc: RpcClient) -> None:
    keys: set[Pubkey] = set()
    async for chunk in stream_program_accounts(
        rpc,
        chain.world.program_id,
        filters.jobs_in_state(JobState.DONE),
        filters.data_slice(DONE_JOB_SLICE),
        record_size=DONE_JOB_SLICE.length,
        chunk_size=5,
    ):
        jobs = decode_jobs(chunk.data, DONE_JOB_SLICE)
        assert set(jobs["state"]) == {JobState.DONE}
        keys |= {chunk.key(i) for i in range(len(chunk))}
        assert not chunk.odd
    done = {name for name in chain.world.labels if name.startswith("done_")}
    assert {label(chain, name) for name in done} <= keys
    assert label(chain, "legacy_done_expired") not in keys  # 232 bytes: filtered by size


async def test_odd_lengths_come_apart(chain: LocalChain, rpc: RpcClient) -> None:
    odd: dict[Pubkey, int] = {}
    total = 0
    async for chunk in stream_program_accounts(
        rpc, chain.world.program_id, [filters.is_job()], None, record_size=JOB_ALLOCATED_SIZE
    ):
        total += len(chunk)
        odd.update((key, len(data)) for key, data in chunk.odd)
    assert odd == {label(chain, "legacy_done_expired"): 232, label(chain, "garbage_job"): 100}
    assert total > 20


async def test_count_runs(chain: LocalChain, rpc: RpcClient) -> None:
    runs = [name for name in chain.world.labels if name.startswith("run_")]
    assert await count_program_accounts(rpc, chain.world.program_id, filters.all_runs()) == len(
        runs
    )


async def test_accounts_and_balances(chain: LocalChain, rpc: RpcClient) -> None:
    market, gone = label(chain, "market_open"), label(chain, "market_gone")
    found = await get_multiple_accounts(rpc, [market, gone])
    assert found[0] is not None
    assert found[0].owner == chain.world.program_id
    assert found[1] is None
    keeper = chain.world.keypairs["keeper"].pubkey()
    assert await get_balance(rpc, keeper) > 0


async def test_chain_time_is_the_chain_clock(chain: LocalChain, rpc: RpcClient) -> None:
    now = await chain_time(rpc)
    assert now.unix_timestamp == chain.unix_timestamp
    assert now.slot == chain.slot
    chain.skew_clock(3 * 86_400)
    assert (await chain_time(rpc)).unix_timestamp == chain.unix_timestamp


async def test_fees(chain: LocalChain, rpc: RpcClient) -> None:
    chain.set_prioritization_fees([0, 10, 500])
    assert await recent_prioritization_fees(rpc, [label(chain, "market_open")]) == [0, 10, 500]


async def test_a_failing_fee_source_is_none_not_an_empty_list(
    chain: LocalChain, rpc: RpcClient, sleeps: SleepRecorder
) -> None:
    chain.set_prioritization_fees([0, 10, 500])
    chain.set_faults(fee_source_error_next=1)
    assert await recent_prioritization_fees(rpc, [label(chain, "market_open")]) is None
    assert sleeps.delays == []  # a JSON-RPC error is an answer: not retried
    assert await recent_prioritization_fees(rpc, [label(chain, "market_open")]) == [0, 10, 500]


async def test_429_from_the_chain_honours_retry_after(
    chain: LocalChain, rpc: RpcClient, sleeps: SleepRecorder
) -> None:
    chain.set_faults(rate_limit_next=2, retry_after_seconds=4)
    assert await chain_time(rpc)
    assert sleeps.delays == [4.0, 4.0]


async def test_clean_admin_of_a_job_whose_market_is_gone(chain: LocalChain, rpc: RpcClient) -> None:
    accounts = await clean_admin_of(chain, rpc, "done_market_gone")
    job_lamports = (await get_account(rpc, accounts.job)).lamports  # type: ignore[union-attr]
    payer_before = await get_balance(rpc, accounts.payer)
    missing = CleanAdminAccounts(label(chain, "job_missing"), accounts.payer, accounts.authority)
    batch = [
        clean_admin(missing, program_id=chain.world.program_id),
        clean_admin(accounts, program_id=chain.world.program_id),
    ]
    result = await sender_for(chain, rpc).execute(
        batch, unit_price=1_000, unit_limit_margin=1.2, max_fee_lamports=100_000
    )
    assert result.outcome is SendOutcome.CONFIRMED
    assert result.kept == (1,)
    assert result.already_closed == (0,)  # job_missing: AccountNotInitialized, a skip
    assert result.dropped[0].names == ("AccountNotInitialized",)
    assert await get_account(rpc, accounts.job) is None
    assert await get_balance(rpc, accounts.payer) == payer_before + job_lamports


async def test_a_dropped_send_is_resent_and_lands(chain: LocalChain, rpc: RpcClient) -> None:
    chain.set_faults(drop_next=2)
    accounts = await clean_admin_of(chain, rpc, "done_market_gone_recently")
    result = await sender_for(chain, rpc).execute(
        [clean_admin(accounts, program_id=chain.world.program_id)],
        unit_price=0,
        max_fee_lamports=100_000,
    )
    assert result.outcome is SendOutcome.CONFIRMED
    assert result.resends >= 2
    assert await get_account(rpc, accounts.job) is None


async def test_a_send_that_never_lands_expires(chain: LocalChain, rpc: RpcClient) -> None:
    chain.set_faults(drop_every=1)
    accounts = await clean_admin_of(chain, rpc, "done_market_gone")
    signal = SendSignal()
    execution = asyncio.create_task(
        sender_for(chain, rpc, signal).execute(
            [clean_admin(accounts, program_id=chain.world.program_id)],
            unit_price=0,
            max_fee_lamports=100_000,
        )
    )
    await signal.sent.wait()
    chain.advance_slots(400)  # well past the blockhash's lastValidBlockHeight
    result = await execution
    assert result.outcome is SendOutcome.EXPIRED
    assert await get_account(rpc, accounts.job) is not None  # nothing happened


async def test_market_terms_read_147_bytes_and_a_gone_market_stays_absent(
    chain: LocalChain, rpc: RpcClient
) -> None:
    """Re-checks read a market's terms only (dataSlice); a closed market is still ABSENT."""
    market, gone = label(chain, "market_open"), label(chain, "market_gone")
    scope = Scope(rpc=rpc, program_id=chain.world.program_id, chunk_size=100)
    terms = await market_terms(scope, [market, gone])
    whole = (await market_views(scope, [market]))[market]
    assert terms[gone] is ABSENT
    assert isinstance(whole, MarketAccount)
    assert terms[market] == dataclasses.replace(whole, queue=None)
    raw = await get_multiple_accounts(rpc, [market], data_slice=filters.market_terms())
    assert raw[0] is not None
    assert len(raw[0].data) == MARKET_TERMS_SIZE
