"""Paginated scans (getProgramAccountsV2): every page to the null key, through short and
empty pages; keys de-duplicated across pages; slots recorded; retries and deadline per page."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from typing import Any

import based58
import pytest
from fake_rpc import FakeRpc, Http, SleepRecorder, Trickle
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keeper.chain.pages import (
    PaginatedScanUnsupported,
    ScanMark,
    ScanMethod,
    ScanOptions,
    scan_program_accounts,
    stream_program_accounts_paged,
)
from keeper.chain.rpc import RpcClient
from keeper.chain.scan import AccountChunk, stream_program_accounts
from keeper.errors import ConfigError, RpcResponseError, RpcTimeout
from keeper.localnet.chain import LocalChain
from keeper.program import filters
from keeper.program.ids import MAINNET

PROGRAM = MAINNET.jobs_program
RECORD = 8
METHOD = "getProgramAccountsV2"


def key_of(i: int) -> bytes:
    return i.to_bytes(32, "big")


def item(key: bytes, data: bytes = b"\x00" * RECORD) -> dict[str, Any]:
    return {
        "pubkey": based58.b58encode(key).decode(),
        "account": {
            "data": [base64.b64encode(data).decode(), "base64"],
            "executable": False,
            "lamports": 1,
            "owner": str(PROGRAM),
            "rentEpoch": 0,
            "space": len(data),
        },
    }


def page(keys: list[int], next_key: str | None, slot: int = 100) -> dict[str, Any]:
    return {
        "context": {"slot": slot, "apiVersion": "2.2.0"},
        "accounts": [item(key_of(k)) for k in keys],
        "paginationKey": next_key,
    }


def serve_pages(fake: FakeRpc, pages: list[dict[str, Any]]) -> None:
    """Page i answers the request whose paginationKey is page i-1's (the first: none)."""
    by_key = {None: pages[0]} | {
        pages[i]["paginationKey"]: pages[i + 1] for i in range(len(pages) - 1)
    }

    def handler(params: list[Any]) -> Any:
        return by_key[params[1].get("paginationKey")]

    fake.on(METHOD, handler)


async def collect(rpc: RpcClient, **kwargs: Any) -> list[AccountChunk]:
    options: dict[str, Any] = {"record_size": RECORD, "chunk_size": 1000, "page_limit": 5}
    options.update(kwargs)
    return [
        chunk
        async for chunk in stream_program_accounts_paged(
            rpc, PROGRAM, [filters.is_job()], None, **options
        )
    ]


def keys_in(chunks: list[AccountChunk]) -> list[bytes]:
    return [bytes(chunk.key(i)) for chunk in chunks for i in range(len(chunk))]


async def test_pages_are_walked_through_short_and_empty_pages_to_the_null_key(
    fake: FakeRpc, rpc: RpcClient
) -> None:
    serve_pages(
        fake,
        [page([1, 2], "a"), page([], "b"), page([3], "c"), page([], "d"), page([4, 5], None)],
    )
    chunks = await collect(rpc)
    assert keys_in(chunks) == [key_of(k) for k in (1, 2, 3, 4, 5)]
    assert fake.count(METHOD) == 5  # and not one more after the null key
    sent = [params[1].get("paginationKey") for params in fake.params(METHOD)]
    assert sent == [None, "a", "b", "c", "d"]


async def test_an_empty_page_with_a_key_is_not_the_end(fake: FakeRpc, rpc: RpcClient) -> None:
    serve_pages(fake, [page([], "a"), page([], "b"), page([7], None)])
    assert keys_in(await collect(rpc)) == [key_of(7)]


async def test_each_page_asks_for_the_limit_the_slice_and_the_changed_slot(
    fake: FakeRpc, rpc: RpcClient
) -> None:
    serve_pages(fake, [page([1], "a"), page([2], None)])
    await collect(rpc, page_limit=3, changed_since_slot=42)
    for params in fake.params(METHOD):
        assert params[0] == str(PROGRAM)
        config = params[1]
        assert config["limit"] == 3
        assert config["changedSinceSlot"] == 42
        assert config["withContext"] is True
        assert config["encoding"] == "base64"


async def test_a_key_given_again_on_a_later_page_is_dropped_and_counted(
    fake: FakeRpc, rpc: RpcClient
) -> None:
    serve_pages(fake, [page([1, 2], "a"), page([2, 3], "b"), page([1], None)])
    chunks = await collect(rpc)
    assert keys_in(chunks) == [key_of(k) for k in (1, 2, 3)]
    assert sum(chunk.duplicates for chunk in chunks) == 2


async def test_chunks_stay_full_across_pages(fake: FakeRpc, rpc: RpcClient) -> None:
    """Memory is one chunk whatever the page size; pages do not cut chunks short."""
    serve_pages(fake, [page([1, 2], "a"), page([3], "b"), page([4, 5, 6], None)])
    chunks = await collect(rpc, chunk_size=4)
    assert [len(chunk) for chunk in chunks] == [4, 2]


async def test_the_lowest_and_highest_context_slots_are_recorded(
    fake: FakeRpc, rpc: RpcClient
) -> None:
    serve_pages(fake, [page([1], "a", slot=10), page([2], "b", slot=13), page([], None, slot=12)])
    mark = ScanMark()
    await collect(rpc, mark=mark)
    assert (mark.low, mark.high, mark.pages) == (10, 13, 3)
    assert mark.since == 10  # an account changed after page 1 was read is not missed


async def test_a_page_that_fails_is_retried_on_its_own(
    fake: FakeRpc, rpc: RpcClient, sleeps: SleepRecorder
) -> None:
    fake.queue(METHOD, page([1], "a"), Http(503), page([2], None))
    chunks = await collect(rpc)
    assert keys_in(chunks) == [key_of(1), key_of(2)]
    assert [params[1].get("paginationKey") for params in fake.params(METHOD)] == [None, "a", "a"]
    assert len(sleeps.delays) == 1  # one backoff, for the second page only


def page_bytes(keys: list[int], next_key: str | None) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": 1, "result": page(keys, next_key)}).encode()


async def test_the_scan_deadline_applies_to_each_page_not_to_the_walk(fake: FakeRpc) -> None:
    """Four pages that each take about a third of the deadline: the walk, longer than the
    deadline, completes; one page slower than the deadline alone fails."""
    bodies = [page_bytes([n], f"k{n}") for n in range(3)] + [page_bytes([9], None)]
    every_s = 0.35 / len(bodies[0])
    fake.queue(METHOD, *(Trickle(body, every_s) for body in bodies))
    async with RpcClient(fake.url, scan_deadline_s=1.0, max_retries=0) as client:
        chunks = await collect(client)
        assert len(keys_in(chunks)) == len(bodies)
        fake.queue(METHOD, Trickle(page_bytes([1], None), 4.0 / len(bodies[0])))
        with pytest.raises(RpcTimeout, match="scan_deadline_seconds"):
            await collect(client)


async def test_a_provider_without_v2_is_a_clear_error_with_the_fix(
    fake: FakeRpc, rpc: RpcClient
) -> None:
    with pytest.raises(PaginatedScanUnsupported) as raised:
        await collect(rpc)  # the fake answers -32601 Method not found
    assert "rpc.scan_method: standard" in raised.value.hint


@pytest.mark.parametrize(
    "answer",
    [
        [item(key_of(1))],  # getProgramAccounts' shape
        {"accounts": [item(key_of(1))]},  # no paginationKey: the end cannot be told
        {"context": {"slot": 1}, "value": []},
    ],
)
async def test_an_answer_of_another_shape_is_a_clear_error_with_the_fix(
    fake: FakeRpc, rpc: RpcClient, answer: object
) -> None:
    fake.queue(METHOD, answer)
    with pytest.raises(PaginatedScanUnsupported) as raised:
        await collect(rpc)
    assert "rpc.scan_method: standard" in raised.value.hint


async def test_a_key_that_comes_back_ends_the_walk_with_an_error(
    fake: FakeRpc, rpc: RpcClient
) -> None:
    fake.queue(METHOD, page([1], "a"), page([2], "b"), page([3], "a"))
    with pytest.raises(RpcResponseError, match="loops"):
        await collect(rpc)
    assert fake.count(METHOD) == 3


async def test_a_changed_since_read_needs_the_paginated_method(rpc: RpcClient) -> None:
    with pytest.raises(ConfigError, match="getProgramAccountsV2"):
        scan_program_accounts(
            rpc,
            PROGRAM,
            [],
            None,
            record_size=RECORD,
            options=ScanOptions(ScanMethod.STANDARD),
            changed_since_slot=1,
        )


# -- against the local chain: any page size gives what the plain scan gives ---------------


@pytest.fixture(scope="module")
def demo_chain() -> Iterator[LocalChain]:
    with LocalChain.run_in_thread("demo", port=0, auto_advance=False) as chain:
        yield chain


QUESTIONS: dict[str, tuple[list[filters.Filter], filters.DataSliceParam | None, int]] = {
    "jobs": ([filters.is_job()], None, 240),
    "sliced jobs": ([filters.is_job()], {"offset": 0, "length": 16}, 16),
    "runs": (filters.all_runs(), None, 120),
    "everything": ([], {"offset": 0, "length": 8}, 8),
}


def _rows(chunks: list[AccountChunk], size: int) -> list[tuple[bytes, bytes]]:
    rows = [
        (bytes(chunk.key(i)), chunk.data[i * size : (i + 1) * size])
        for chunk in chunks
        for i in range(len(chunk))
    ]
    rows += [(bytes(key), data) for chunk in chunks for key, data in chunk.odd]
    return sorted(rows)


async def _both(
    chain: LocalChain, question: str, page_limit: int, chunk_size: int
) -> tuple[list[tuple[bytes, bytes]], list[tuple[bytes, bytes]], ScanMark]:
    found, data_slice, size = QUESTIONS[question]
    program = chain.world.program_id
    mark = ScanMark()
    async with RpcClient(chain.url) as client:
        plain = stream_program_accounts(client, program, found, data_slice, record_size=size)
        paged = stream_program_accounts_paged(
            client,
            program,
            found,
            data_slice,
            record_size=size,
            chunk_size=chunk_size,
            page_limit=page_limit,
            mark=mark,
        )
        plain_rows = _rows([chunk async for chunk in plain], size)
        paged_rows = _rows([chunk async for chunk in paged], size)
    return plain_rows, paged_rows, mark


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    question=st.sampled_from(sorted(QUESTIONS)),
    page_limit=st.integers(min_value=1, max_value=60),
    chunk_size=st.integers(min_value=1, max_value=20),
)
def test_any_page_size_gives_the_accounts_the_plain_scan_gives(
    demo_chain: LocalChain, question: str, page_limit: int, chunk_size: int
) -> None:
    plain, paged, mark = asyncio.run(_both(demo_chain, question, page_limit, chunk_size))
    assert plain
    assert paged == plain
    assert mark.pages >= 1
    assert mark.since is not None
