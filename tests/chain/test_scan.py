"""Streamed getProgramAccounts: chunks as bytes arrive, odd lengths apart, typed failures."""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterable, Iterator

import based58
import numpy as np
import pytest
from fake_rpc import FakeRpc, Http, RpcFailure, SleepRecorder, Stream
from solders.pubkey import Pubkey

from keeper.chain.rpc import RpcCallError, RpcClient
from keeper.chain.scan import AccountChunk, count_program_accounts, stream_program_accounts
from keeper.errors import RpcError, RpcResponseError
from keeper.program import filters
from keeper.program.batch import DONE_JOB_SLICE, decode_jobs
from keeper.program.ids import MAINNET
from keeper.program.state import JobState

PROGRAM = MAINNET.jobs_program
U64_MAX = 2**64 - 1  # what real nodes put in rentEpoch: must not overflow the parser


def key_of(i: int) -> bytes:
    return i.to_bytes(32, "big")


def entry(key: bytes, data: bytes) -> bytes:
    encoded = base64.b64encode(data).decode()
    pubkey = based58.b58encode(key).decode()
    return (
        f'{{"account":{{"data":["{encoded}","base64"],"executable":false,"lamports":2561280,'
        f'"owner":"{PROGRAM}","rentEpoch":{U64_MAX},"space":{len(data)}}},"pubkey":"{pubkey}"}}'
    ).encode()


def body(accounts: Iterable[tuple[bytes, bytes]], piece: int = 64 * 1024) -> Iterator[bytes]:
    """The JSON-RPC response, produced lazily in pieces (never whole, on either side)."""
    buffer = bytearray(b'{"jsonrpc":"2.0","result":[')
    for n, (key, data) in enumerate(accounts):
        if n:
            buffer += b","
        buffer += entry(key, data)
        if len(buffer) >= piece:
            yield bytes(buffer)
            buffer.clear()
    buffer += b'],"id":1}'
    yield bytes(buffer)


async def collect(rpc: RpcClient, **kwargs: object) -> list[AccountChunk]:
    options: dict[str, object] = {"record_size": 8, "chunk_size": 1000}
    options.update(kwargs)
    return [
        chunk
        async for chunk in stream_program_accounts(
            rpc,
            PROGRAM,
            filters.jobs_in_state(JobState.DONE),
            None,
            **options,  # type: ignore[arg-type]
        )
    ]


async def test_a_large_response_streams_in_chunks(fake: FakeRpc, rpc: RpcClient) -> None:
    total, size = 200_000, 10_000
    stream = Stream(body((key_of(i), struct.pack("<Q", i)) for i in range(total)))
    fake.queue("getProgramAccounts", stream)
    seen = 0
    sent_at_first_chunk = None
    async for chunk in stream_program_accounts(
        rpc, PROGRAM, [], None, record_size=8, chunk_size=size
    ):
        if sent_at_first_chunk is None:
            sent_at_first_chunk = stream.sent
        assert len(chunk) == size
        assert len(chunk.keys) == 32 * size
        assert len(chunk.data) == 8 * size
        assert not chunk.odd
        values = np.frombuffer(chunk.data, dtype="<u8")
        assert values[0] == seen
        assert values[-1] == seen + size - 1
        assert chunk.key(size - 1) == Pubkey.from_bytes(key_of(seen + size - 1))
        seen += len(chunk)
    assert seen == total
    # The first chunk was in hand long before the node had sent the whole body:
    # the response is never held in memory, only the chunk being built.
    assert sent_at_first_chunk is not None
    assert sent_at_first_chunk < stream.sent / 4


async def test_the_last_chunk_holds_the_remainder(fake: FakeRpc, rpc: RpcClient) -> None:
    fake.queue("getProgramAccounts", Stream(body((key_of(i), bytes(8)) for i in range(2500))))
    chunks = await collect(rpc)
    assert [len(c) for c in chunks] == [1000, 1000, 500]


async def test_records_of_another_length_are_reported_apart(fake: FakeRpc, rpc: RpcClient) -> None:
    accounts = [(key_of(i), bytes([i]) * (232 if i % 3 == 0 else 240)) for i in range(10)]
    fake.queue("getProgramAccounts", Stream(body(accounts)))
    chunks = await collect(rpc, record_size=240, chunk_size=100)
    assert len(chunks) == 1
    chunk = chunks[0]
    assert len(chunk) == 6
    assert [key for key, _ in chunk.odd] == [Pubkey.from_bytes(key_of(i)) for i in (0, 3, 6, 9)]
    assert all(len(data) == 232 for _, data in chunk.odd)
    assert chunk.key_array().shape == (6, 32)


async def test_chunks_feed_the_batch_decoder(fake: FakeRpc, rpc: RpcClient) -> None:
    job = bytearray(240)
    job[208] = JobState.DONE
    job[209:217] = struct.pack("<q", 1_700_000_000)
    part = bytes(job[DONE_JOB_SLICE.offset : DONE_JOB_SLICE.end])
    fake.queue("getProgramAccounts", Stream(body([(key_of(1), part), (key_of(2), part)])))
    chunks = await collect(rpc, record_size=DONE_JOB_SLICE.length)
    jobs = decode_jobs(chunks[0].data, DONE_JOB_SLICE)
    assert list(jobs["state"]) == [JobState.DONE, JobState.DONE]
    assert list(jobs["time_end"]) == [1_700_000_000, 1_700_000_000]


async def test_the_request_carries_filters_slice_and_encoding(
    fake: FakeRpc, rpc: RpcClient
) -> None:
    fake.queue("getProgramAccounts", Stream(body([])))
    market = Pubkey.from_bytes(key_of(5))
    wanted = filters.jobs_in_state_of_market(JobState.DONE, market)
    chunks = [
        c
        async for c in stream_program_accounts(
            rpc, PROGRAM, wanted, filters.data_slice(DONE_JOB_SLICE), record_size=81
        )
    ]
    assert chunks == []
    [params] = fake.params("getProgramAccounts")
    assert params[0] == str(PROGRAM)
    assert params[1]["encoding"] == "base64"
    assert params[1]["filters"] == wanted
    assert params[1]["dataSlice"] == {
        "offset": DONE_JOB_SLICE.offset,
        "length": DONE_JOB_SLICE.length,
    }


async def test_count_moves_keys_only(fake: FakeRpc, rpc: RpcClient) -> None:
    fake.queue("getProgramAccounts", Stream(body((key_of(i), b"") for i in range(12_345))))
    assert await count_program_accounts(rpc, PROGRAM, filters.all_runs()) == 12_345
    [params] = fake.params("getProgramAccounts")
    assert params[1]["dataSlice"] == {"offset": 0, "length": 0}


async def test_a_json_rpc_error_body_is_a_typed_error(fake: FakeRpc, rpc: RpcClient) -> None:
    fake.queue(
        "getProgramAccounts",
        RpcFailure(-32010, "excluded from account secondary indexes"),
    )
    with pytest.raises(RpcCallError) as caught:
        await collect(rpc)
    assert caught.value.code == -32010


async def test_a_429_before_the_body_is_retried(fake: FakeRpc, rpc: RpcClient) -> None:
    fake.queue(
        "getProgramAccounts",
        Http(429, headers={"Retry-After": "1"}),
        Stream(body((key_of(i), bytes(8)) for i in range(3))),
    )
    chunks = await collect(rpc)
    assert sum(len(c) for c in chunks) == 3
    assert fake.count("getProgramAccounts") == 2


async def test_a_body_that_stops_early_is_a_response_error(fake: FakeRpc, rpc: RpcClient) -> None:
    pieces = list(body((key_of(i), bytes(8)) for i in range(50)))
    truncated = b"".join(pieces)[:-40]
    fake.queue("getProgramAccounts", Stream([truncated]))
    with pytest.raises(RpcResponseError, match="ended early"):
        await collect(rpc)


async def test_a_connection_lost_mid_stream_raises_and_is_not_resumed(
    fake: FakeRpc, rpc: RpcClient
) -> None:
    def breaking() -> Iterator[bytes]:
        pieces = body((key_of(i), bytes(8)) for i in range(30_000))
        yield next(pieces)
        yield next(pieces)
        raise ConnectionResetError("node went away")

    fake.queue("getProgramAccounts", Stream(breaking()))
    with pytest.raises(RpcError):
        await collect(rpc, chunk_size=100)
    assert fake.count("getProgramAccounts") == 1


async def test_a_malformed_entry_is_a_response_error(fake: FakeRpc, rpc: RpcClient) -> None:
    bad = (
        b'{"jsonrpc":"2.0","id":1,'
        b'"result":[{"pubkey":"11111111111111111111111111111111","account":{}}]}'
    )
    fake.queue("getProgramAccounts", Stream([bad]))
    with pytest.raises(RpcResponseError, match="malformed"):
        await collect(rpc)


async def test_a_result_that_is_not_a_list_is_a_response_error(
    fake: FakeRpc, rpc: RpcClient
) -> None:
    fake.queue("getProgramAccounts", {"context": {"slot": 1}, "value": []})
    with pytest.raises(RpcResponseError, match="without a result array"):
        await collect(rpc)


async def test_chunk_size_must_be_positive(rpc: RpcClient) -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        await collect(rpc, chunk_size=0)


async def test_the_observer_sees_one_entry_per_stream(fake: FakeRpc) -> None:
    seen: list[tuple[str, str]] = []

    class Observer:
        def request_done(self, method: str, outcome: str, seconds: float) -> None:
            seen.append((method, outcome))

    fake.queue(
        "getProgramAccounts",
        Http(503),
        Stream(body((key_of(i), bytes(8)) for i in range(10))),
        RpcFailure(-32602, "bad filter"),
    )
    async with RpcClient(fake.url, observer=Observer(), sleep=SleepRecorder()) as rpc:
        await collect(rpc)
        with pytest.raises(RpcCallError):
            await collect(rpc)
    assert seen == [
        ("getProgramAccounts", "server_error"),
        ("getProgramAccounts", "ok"),
        ("getProgramAccounts", "rpc_error"),
    ]
