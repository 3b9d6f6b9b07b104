"""The fast decoders agree with anchorpy's coder, field by field, on random accounts.

anchorpy is the reference: it reads the package IDL the way Anchor's Borsh reader does.
The fast paths (``layouts.decode_*`` with struct, ``batch.decode_*`` with numpy over whole
records or ``dataSlice`` parts) must give the same value for every field they expose.
Accounts come both from random field values and from random raw bytes (so the check
does not lean on the package's own encoders).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from solders.pubkey import Pubkey

from keeper.errors import DecodeError
from keeper.program import batch, layouts
from keeper.program.anchor import decode_account
from keeper.program.layouts import (
    JobAccount,
    MarketAccount,
    MarketOffset,
    RunAccount,
    StakeAccount,
)

# anchorpy's first use builds its construct parsers; a deadline would make that flaky.
AGREEMENT = settings(deadline=None, max_examples=60)

# (offset, size) of each field, from the facts page: an independent copy of the layouts.
JOB_SPANS = {
    "discriminator": (0, 8),
    "ipfs_job": (8, 32),
    "ipfs_result": (40, 32),
    "market": (72, 32),
    "node": (104, 32),
    "payer": (136, 32),
    "price": (168, 8),
    "project": (176, 32),
    "state": (208, 1),
    "time_end": (209, 8),
    "time_start": (217, 8),
    "timeout": (225, 8),
}
RUN_SPANS = {
    "discriminator": (0, 8),
    "job": (8, 32),
    "node": (40, 32),
    "payer": (72, 32),
    "state": (104, 1),
    "time": (105, 8),
}


def plain(value: Any) -> Any:
    """Pubkeys and byte arrays as bytes, queues as tuples of bytes, ints as ints."""
    if isinstance(value, Pubkey):
        return bytes(value)
    if isinstance(value, bytes):
        return value
    if isinstance(value, list | tuple):  # anchorpy's ListContainer is a list
        if all(isinstance(item, int) for item in value):
            return bytes(value)
        return tuple(plain(item) for item in value)
    if value is None:
        return None
    return int(value)


def fields_of(value: Any) -> dict[str, Any]:
    return {field.name: plain(getattr(value, field.name)) for field in dataclasses.fields(value)}


def record_fields(records: batch.StructArray, index: int) -> dict[str, Any]:
    """One numpy record as plain values: void fields as bytes, numbers as ints."""
    names = records.dtype.names or ()
    out: dict[str, Any] = {}
    for name in names:
        value = records[name][index]
        out[name] = value.tobytes() if records.dtype[name].kind == "V" else int(value)
    return out


def anchor_fields(data: bytes, *, staking: bool = False) -> dict[str, Any]:
    return fields_of(decode_account(data, staking=staking))


def raw_account(discriminator: bytes, size: int) -> st.SearchStrategy[bytes]:
    return st.binary(min_size=size - 8, max_size=size - 8).map(lambda rest: discriminator + rest)


# --- anchorpy's attribute names ------------------------------------------------------


def test_anchorpy_returns_snake_case_field_names() -> None:
    """anchorpy converts the IDL's camelCase (``timeEnd``) to snake_case attributes.

    The comparisons below rely on that: our dataclass fields use the same names.
    """
    decoded = decode_account(layouts.encode_job(_any_job()))
    names = {field.name for field in dataclasses.fields(decoded)}
    assert "time_end" in names
    assert "timeEnd" not in names
    assert names == {field.name for field in dataclasses.fields(JobAccount)}


@pytest.mark.parametrize(
    ("ours", "data", "staking"),
    [
        (RunAccount, layouts.RUN_DISCRIMINATOR + bytes(112), False),
        (
            MarketAccount,
            layouts.MARKET_DISCRIMINATOR + bytes(layouts.MARKET_ALLOCATED_SIZE - 8),
            False,
        ),
        (StakeAccount, layouts.STAKE_DISCRIMINATOR + bytes(112), True),
    ],
)
def test_anchorpy_field_names_match_our_dataclasses(ours: type, data: bytes, staking: bool) -> None:
    decoded = decode_account(data, staking=staking)
    assert [f.name for f in dataclasses.fields(decoded)] == [
        f.name for f in dataclasses.fields(ours)
    ]


def _any_job() -> JobAccount:
    key = Pubkey.default()
    return JobAccount(bytes(32), bytes(32), key, key, key, 0, key, 0, 0, 0, 0)


# --- single accounts: struct decoders vs anchorpy --------------------------------------


@AGREEMENT
@given(st.from_type(JobAccount).map(lambda job: dataclasses.replace(job, timeout=job.timeout or 0)))
def test_job_decoder_agrees_with_anchorpy(job: JobAccount) -> None:
    data = layouts.encode_job(job)
    assert fields_of(layouts.decode_job(data)) == anchor_fields(data)


@AGREEMENT
@given(raw_account(layouts.JOB_DISCRIMINATOR, layouts.JOB_ALLOCATED_SIZE))
def test_job_decoder_agrees_with_anchorpy_on_raw_bytes(data: bytes) -> None:
    assert fields_of(layouts.decode_job(data)) == anchor_fields(data)


def test_legacy_jobs_are_what_anchorpy_and_the_program_cannot_read() -> None:
    """A 232-byte job fails in anchorpy as in the program (3003); the fast path reads it."""
    legacy = dataclasses.replace(_any_job(), timeout=None)
    data = layouts.encode_job(legacy)
    with pytest.raises(DecodeError, match="anchorpy could not decode"):
        decode_account(data)
    assert layouts.decode_job(data).is_legacy


@AGREEMENT
@given(st.from_type(RunAccount))
def test_run_decoder_agrees_with_anchorpy(run: RunAccount) -> None:
    data = layouts.encode_run(run)
    assert fields_of(layouts.decode_run(data)) == anchor_fields(data)


@AGREEMENT
@given(raw_account(layouts.RUN_DISCRIMINATOR, layouts.RUN_ALLOCATED_SIZE))
def test_run_decoder_agrees_with_anchorpy_on_raw_bytes(data: bytes) -> None:
    assert fields_of(layouts.decode_run(data)) == anchor_fields(data)


@AGREEMENT
@given(
    st.from_type(MarketAccount),
    st.lists(st.from_type(Pubkey), max_size=3).map(tuple),
    st.sampled_from([layouts.MARKET_ALLOCATED_SIZE, layouts.LEGACY_MARKET_ALLOCATED_SIZE]),
)
def test_market_decoder_agrees_with_anchorpy(
    market: MarketAccount, stale: tuple[Pubkey, ...], size: int
) -> None:
    data = layouts.encode_market(market, size=size, stale_tail=stale)
    assert fields_of(layouts.decode_market(data)) == anchor_fields(data)


@AGREEMENT
@given(
    st.binary(min_size=MarketOffset.QUEUE_LEN - 8, max_size=MarketOffset.QUEUE_LEN - 8),
    st.integers(0, 20),
    st.binary(min_size=20 * 32, max_size=20 * 32),
)
def test_market_decoder_agrees_with_anchorpy_on_raw_bytes(
    header: bytes, queue_len: int, rest: bytes
) -> None:
    # Random header and queue; the random ``rest`` beyond queue_len is a stale tail.
    data = layouts.MARKET_DISCRIMINATOR + header + queue_len.to_bytes(4, "little") + rest
    assert fields_of(layouts.decode_market(data)) == anchor_fields(data)


@AGREEMENT
@given(st.integers(1, 2**32 - 1), st.integers(0, 8))
def test_market_queue_overrun_fails_in_both(queue_len: int, present: int) -> None:
    present = min(present, queue_len - 1)  # fewer entries than the length promises
    header = MarketOffset.QUEUE_LEN - 8
    data = (
        layouts.MARKET_DISCRIMINATOR
        + bytes(header)
        + queue_len.to_bytes(4, "little")
        + bytes(32 * present)
    )
    with pytest.raises(DecodeError):
        layouts.decode_market(data)
    with pytest.raises(DecodeError):
        decode_account(data)


@AGREEMENT
@given(st.from_type(StakeAccount))
def test_stake_decoder_agrees_with_anchorpy(stake: StakeAccount) -> None:
    data = layouts.encode_stake(stake)
    assert fields_of(layouts.decode_stake(data)) == anchor_fields(data, staking=True)


@AGREEMENT
@given(raw_account(layouts.STAKE_DISCRIMINATOR, layouts.STAKE_ALLOCATED_SIZE))
def test_stake_decoder_agrees_with_anchorpy_on_raw_bytes(data: bytes) -> None:
    assert fields_of(layouts.decode_stake(data)) == anchor_fields(data, staking=True)


# --- batches and dataSlice parts: numpy vs anchorpy -------------------------------------


def slices_within(size: int) -> st.SearchStrategy[batch.DataSlice]:
    return st.integers(0, size - 1).flatmap(
        lambda offset: st.integers(1, size - offset).map(
            lambda length: batch.DataSlice(offset, length)
        )
    )


def expected_names(spans: dict[str, tuple[int, int]], part: batch.DataSlice) -> set[str]:
    return {
        name
        for name, (offset, size) in spans.items()
        if offset >= part.offset and offset + size <= part.end
    }


def check_batch_agrees(
    records: list[bytes],
    part: batch.DataSlice,
    decoded: batch.StructArray,
    spans: dict[str, tuple[int, int]],
) -> None:
    assert len(decoded) == len(records)
    assert set(decoded.dtype.names or ()) == expected_names(spans, part)
    for index, data in enumerate(records):
        reference = {**anchor_fields(data), "discriminator": data[:8]}
        fast = record_fields(decoded, index)
        assert fast == {name: reference[name] for name in fast}


@AGREEMENT
@given(
    st.lists(raw_account(layouts.JOB_DISCRIMINATOR, layouts.JOB_ALLOCATED_SIZE), max_size=8),
    st.sampled_from([batch.FULL_JOB, batch.DONE_JOB_SLICE]) | slices_within(240),
)
def test_batch_job_decoding_agrees_with_anchorpy(
    records: list[bytes], part: batch.DataSlice
) -> None:
    buffer = b"".join(data[part.offset : part.end] for data in records)
    check_batch_agrees(records, part, batch.decode_jobs(buffer, part), JOB_SPANS)


@AGREEMENT
@given(
    st.lists(raw_account(layouts.RUN_DISCRIMINATOR, layouts.RUN_ALLOCATED_SIZE), max_size=8),
    st.just(batch.FULL_RUN) | slices_within(120),
)
def test_batch_run_decoding_agrees_with_anchorpy(
    records: list[bytes], part: batch.DataSlice
) -> None:
    buffer = b"".join(data[part.offset : part.end] for data in records)
    check_batch_agrees(records, part, batch.decode_runs(buffer, part), RUN_SPANS)
