"""Golden bytes for one account of each kind, decoded field by field.

Each golden account is written as a table of ``(offset, hex, field)`` rows checked by
hand against the facts page (program-facts.md, "Accounts"); a test also checks that the
rows are contiguous and sit at the named offsets in ``keeper.program.layouts``. Pubkeys
are the byte runs 0x00.., 0x20.., ... so a shifted field shows up as a wrong run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from solders.pubkey import Pubkey

from keeper.errors import DecodeError
from keeper.program import layouts
from keeper.program.layouts import (
    JobAccount,
    JobOffset,
    MarketAccount,
    MarketOffset,
    RunAccount,
    RunOffset,
    StakeAccount,
    StakeOffset,
)

Table = tuple[tuple[int, str, str], ...]

# The byte runs bytes(range(n, n + 32)) as base58: an independent spelling of the hex rows.
KEY_00 = Pubkey.from_string("1thX6LZfHDZZKUs92febYZhYRcXddmzfzF2NvTkPNE")
KEY_10 = Pubkey.from_string("25iczLYW2S2qo1KbqvFNJbtmc5nqJectwCejxTe3hiXY")
KEY_30 = Pubkey.from_string("4F85ZySpwyY6FuKqoUgmccbBRAXGrgb8pFyjpd5DcNrA")
KEY_40 = Pubkey.from_string("5KporntzQkHiVMKxnFuUGcwPKhtVdhaFkneEkhnoZi1U")
KEY_50 = Pubkey.from_string("6QXY9cM9sX3LioL5m38AvdHbEFFiQiZNhKJjgnWPX3An")
KEY_60 = Pubkey.from_string("7VEGSRoKLHnxxFLCjpLsaddo8ncwBjYVdqyEcsDyUNL6")
KEY_70 = Pubkey.from_string("8ZvzjFFUo4YbBhLKibZaEdz13Kz9xkXcaNdjYwwZRhVQ")
KEY_80 = Pubkey.from_string("9edj24heFqJDR9LShNnGteLCwsMNjmWjWuJEV2f9P2ei")
KEY_90 = Pubkey.from_string("AjLTJt9oic3qebLZg9zyYegQrQibWnVrTRxjR7NjLMp2")
KEY_A0 = Pubkey.from_string("Bp3BbhbyBNoTt3LgewDgCf2ckx5pHoUyPxdEMC6KHgyL")
KEY_C0 = Pubkey.from_string("DySeBLWJ6vJiLwLvcVf5Wfj2a2pFqqTDH1xEDMXVCMHx")
KEY_E0 = Pubkey.from_string("G8r6kyQd2ToxoqMAa46UpgRSP7YhPsRTA5HE5Wxf71ca")

# --- JobAccount: a Done job, current layout (240 bytes allocated, 233 of content) -------
JOB_TABLE: Table = (
    (0, "5b10a2052dd27d41", "discriminator"),
    (8, "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", "ipfs_job"),
    (40, "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f", "ipfs_result"),
    (72, "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f", "market"),
    (104, "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f", "node"),
    (136, "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f", "payer"),
    (168, "40420f0000000000", "price"),  # 1_000_000 = 0x0f4240
    (176, "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf", "project"),
    (208, "02", "state"),  # Done
    (209, "00f1536500000000", "time_end"),  # 1_700_000_000 = 0x6553f100
    (217, "18ed536500000000", "time_start"),  # 1_699_999_000 = 0x6553ed18
    (225, "100e000000000000", "timeout"),  # 3_600 = 0x0e10
    (233, "00000000000000", "padding"),  # allocated 8 + size_of = 240
)
JOB = JobAccount(
    ipfs_job=bytes(range(0x20)),
    ipfs_result=bytes(range(0x20, 0x40)),
    market=KEY_40,
    node=KEY_60,
    payer=KEY_80,
    price=1_000_000,
    project=KEY_A0,
    state=2,
    time_end=1_700_000_000,
    time_start=1_699_999_000,
    timeout=3_600,
)

# --- Legacy JobAccount: before November 2024, no timeout, 232 bytes ------------------
LEGACY_JOB_TABLE: Table = (
    *JOB_TABLE[:-2],
    (225, "00000000000000", "padding"),  # allocated 232: 225 of content + 7
)
LEGACY_JOB = dataclasses.replace(JOB, timeout=None)

# --- RunAccount (120 bytes allocated, 113 of content) --------------------------------
RUN_TABLE: Table = (
    (0, "c2a96ee6eb0be116", "discriminator"),
    (8, "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf", "job"),
    (40, "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f", "node"),
    (72, "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f", "payer"),
    (104, "00", "state"),  # never written by the program
    (105, "a077556500000000", "time"),  # 1_700_100_000 = 0x655577a0
    (113, "00000000000000", "padding"),
)
RUN = RunAccount(job=KEY_C0, node=KEY_60, payer=KEY_80, state=0, time=1_700_100_000)

# --- MarketAccount: header, a queue of 2, one stale key left from a longer queue ------
MARKET_HEADER_TABLE: Table = (
    (0, "c94ebbe1f0c6c9fb", "discriminator"),
    (8, "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff", "authority"),
    (40, "0075120000000000", "job_expiration"),  # 1_209_600 = 0x127500 (14 days)
    (48, "90d0030000000000", "job_price"),  # 250_000 = 0x03d090
    (56, "201c000000000000", "job_timeout"),  # 7_200 = 0x1c20
    (64, "00", "job_type"),
    (65, "303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f", "vault"),
    (97, "fe", "vault_bump"),
    (98, "505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f", "node_access_key"),
    (130, "00e40b54020000000000000000000000", "node_xnos_minimum"),  # 10_000_000_000
    (146, "00", "queue_type"),  # Job
)
MARKET_QUEUE_TABLE: Table = (
    (147, "02000000", "queue_len"),
    (151, "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf", "queue[0]"),
    (183, "101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f", "queue[1]"),
    (215, "707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f", "stale tail"),
)
MARKET_TABLE: Table = (*MARKET_HEADER_TABLE, *MARKET_QUEUE_TABLE)
MARKET_TAIL_ZEROS = 10_224 - 247  # the rest of the allocation is zero
MARKET = MarketAccount(
    authority=KEY_E0,
    job_expiration=1_209_600,
    job_price=250_000,
    job_timeout=7_200,
    job_type=0,
    vault=KEY_30,
    vault_bump=254,
    node_access_key=KEY_50,
    node_xnos_minimum=10_000_000_000,
    queue_type=0,
    queue=(KEY_C0, KEY_10),
)
STALE_KEY = KEY_70

# --- Legacy MarketAccount: opened before April 2024, 3,376 bytes, room for 100 ---------
LEGACY_MARKET_TABLE: Table = (
    *MARKET_HEADER_TABLE,
    (147, "01000000", "queue_len"),
    (151, "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf", "queue[0]"),
)
LEGACY_MARKET_TAIL_ZEROS = 3_376 - 183
LEGACY_MARKET = dataclasses.replace(MARKET, queue=(KEY_C0,))

# --- StakeAccount of the staking program (120 bytes allocated, 113 of content) ---------
STAKE_TABLE: Table = (
    (0, "509e437c32bdc0ff", "discriminator"),
    (8, "00f2052a01000000", "amount"),  # 5_000_000_000 = 0x012a05f200
    (16, "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f", "authority"),
    (48, "8033e10100000000", "duration"),  # 31_536_000 = 0x01e13380 (a year)
    (56, "0000000000000000", "time_unstake"),
    (64, "909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeaf", "vault"),
    (96, "fd", "vault_bump"),
    (97, "00c817a8040000000000000000000000", "xnos"),  # 20_000_000_000 = 0x04a817c800
    (113, "00000000000000", "padding"),
)
STAKE = StakeAccount(
    amount=5_000_000_000,
    authority=KEY_60,
    duration=31_536_000,
    time_unstake=0,
    vault=KEY_90,
    vault_bump=253,
    xnos=20_000_000_000,
)


def assemble(table: Table, zeros: int = 0) -> bytes:
    return bytes.fromhex("".join(hex_text for _, hex_text, _ in table)) + bytes(zeros)


JOB_BYTES = assemble(JOB_TABLE)
LEGACY_JOB_BYTES = assemble(LEGACY_JOB_TABLE)
RUN_BYTES = assemble(RUN_TABLE)
MARKET_BYTES = assemble(MARKET_TABLE, MARKET_TAIL_ZEROS)
LEGACY_MARKET_BYTES = assemble(LEGACY_MARKET_TABLE, LEGACY_MARKET_TAIL_ZEROS)
STAKE_BYTES = assemble(STAKE_TABLE)

NAMED_OFFSETS: dict[str, tuple[type, Table]] = {
    "job": (JobOffset, JOB_TABLE),
    "legacy job": (JobOffset, LEGACY_JOB_TABLE),
    "run": (RunOffset, RUN_TABLE),
    "market": (MarketOffset, MARKET_TABLE),
    "legacy market": (MarketOffset, LEGACY_MARKET_TABLE),
    "stake": (StakeOffset, STAKE_TABLE),
}


def fields_of(value: Any) -> dict[str, Any]:
    # Not dataclasses.asdict: it deep-copies, and solders' Pubkey cannot be copied that way.
    return {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}


# --- the tables themselves -----------------------------------------------------------


@pytest.mark.parametrize("kind", NAMED_OFFSETS)
def test_golden_table_rows_are_contiguous(kind: str) -> None:
    _, table = NAMED_OFFSETS[kind]
    expected_offset = 0
    for offset, hex_text, field in table:
        assert offset == expected_offset, f"{kind}.{field}"
        expected_offset += len(hex_text) // 2


@pytest.mark.parametrize("kind", NAMED_OFFSETS)
def test_golden_table_rows_sit_at_the_named_offsets(kind: str) -> None:
    offsets, table = NAMED_OFFSETS[kind]
    for offset, _, field in table:
        name = field.upper()
        if hasattr(offsets, name):
            assert getattr(offsets, name) == offset, f"{kind}.{field}"


def test_golden_sizes_are_the_allocated_sizes_from_the_facts_page() -> None:
    assert len(JOB_BYTES) == layouts.JOB_ALLOCATED_SIZE == 240
    assert len(LEGACY_JOB_BYTES) == layouts.LEGACY_JOB_ALLOCATED_SIZE == 232
    assert len(RUN_BYTES) == layouts.RUN_ALLOCATED_SIZE == 120
    assert len(MARKET_BYTES) == layouts.MARKET_ALLOCATED_SIZE == 10_224
    assert len(LEGACY_MARKET_BYTES) == layouts.LEGACY_MARKET_ALLOCATED_SIZE == 3_376
    assert len(STAKE_BYTES) == layouts.STAKE_ALLOCATED_SIZE == 120


def test_allocated_market_sizes_hold_the_documented_queue_capacity() -> None:
    def capacity(size: int) -> int:
        return (size - MarketOffset.QUEUE) // 32

    assert capacity(layouts.MARKET_ALLOCATED_SIZE) == layouts.MARKET_QUEUE_CAPACITY == 314
    assert capacity(layouts.LEGACY_MARKET_ALLOCATED_SIZE) == 100
    assert layouts.LEGACY_MARKET_QUEUE_CAPACITY == 100


# --- golden decoding, field by field -------------------------------------------------


def test_job_golden_decodes_field_by_field() -> None:
    job = layouts.decode_job(JOB_BYTES)
    assert job.ipfs_job == bytes.fromhex(JOB_TABLE[1][1])
    assert job.ipfs_result == bytes.fromhex(JOB_TABLE[2][1])
    assert job.market == KEY_40
    assert job.node == KEY_60
    assert job.payer == KEY_80
    assert job.price == 1_000_000
    assert job.project == KEY_A0
    assert job.state == 2
    assert job.time_end == 1_700_000_000
    assert job.time_start == 1_699_999_000
    assert job.timeout == 3_600
    assert not job.is_legacy
    assert fields_of(job) == fields_of(JOB)


def test_legacy_job_golden_decodes_without_timeout() -> None:
    job = layouts.decode_job(LEGACY_JOB_BYTES)
    assert job.timeout is None
    assert job.is_legacy
    assert layouts.is_legacy_job(LEGACY_JOB_BYTES)
    assert not layouts.is_legacy_job(JOB_BYTES)
    # Every other field sits where the current layout has it.
    assert fields_of(job) == {**fields_of(JOB), "timeout": None}


def test_run_golden_decodes_field_by_field() -> None:
    run = layouts.decode_run(RUN_BYTES)
    assert run.job == KEY_C0
    assert run.node == KEY_60
    assert run.payer == KEY_80
    assert run.state == 0
    assert run.time == 1_700_100_000
    assert fields_of(run) == fields_of(RUN)


def test_market_golden_decodes_field_by_field() -> None:
    market = layouts.decode_market(MARKET_BYTES)
    assert market.authority == KEY_E0
    assert market.job_expiration == 1_209_600
    assert market.job_price == 250_000
    assert market.job_timeout == 7_200
    assert market.job_type == 0
    assert market.vault == KEY_30
    assert market.vault_bump == 254
    assert market.node_access_key == KEY_50
    assert market.node_xnos_minimum == 10_000_000_000
    assert market.queue_type == 0
    assert market.queue == (KEY_C0, KEY_10)
    assert fields_of(market) == fields_of(MARKET)


def test_market_queue_ignores_the_stale_tail() -> None:
    market = layouts.decode_market(MARKET_BYTES)
    assert STALE_KEY not in market.queue
    assert bytes(STALE_KEY) in MARKET_BYTES  # the stale key really is in the raw bytes


def test_legacy_market_golden_still_decodes() -> None:
    market = layouts.decode_market(LEGACY_MARKET_BYTES)
    assert fields_of(market) == fields_of(LEGACY_MARKET)


def test_a_full_legacy_market_queue_of_100_decodes() -> None:
    queue = tuple(Pubkey.from_bytes(bytes([index]) * 32) for index in range(100))
    full = dataclasses.replace(LEGACY_MARKET, queue=queue)
    data = layouts.encode_market(full, size=layouts.LEGACY_MARKET_ALLOCATED_SIZE)
    assert len(data) == 3_376
    assert layouts.decode_market(data).queue == queue


def test_stake_golden_decodes_field_by_field() -> None:
    stake = layouts.decode_stake(STAKE_BYTES)
    assert stake.amount == 5_000_000_000
    assert stake.authority == KEY_60
    assert stake.duration == 31_536_000
    assert stake.time_unstake == 0
    assert stake.vault == KEY_90
    assert stake.vault_bump == 253
    assert stake.xnos == 20_000_000_000
    assert fields_of(stake) == fields_of(STAKE)


# --- golden encoding -----------------------------------------------------------------


def test_encoders_write_the_golden_bytes() -> None:
    assert layouts.encode_job(JOB) == JOB_BYTES
    assert layouts.encode_job(LEGACY_JOB) == LEGACY_JOB_BYTES
    assert layouts.encode_run(RUN) == RUN_BYTES
    assert layouts.encode_market(MARKET, stale_tail=(STALE_KEY,)) == MARKET_BYTES
    legacy_market = layouts.encode_market(LEGACY_MARKET, size=layouts.LEGACY_MARKET_ALLOCATED_SIZE)
    assert legacy_market == LEGACY_MARKET_BYTES
    assert layouts.encode_stake(STAKE) == STAKE_BYTES


def test_encoder_refuses_content_larger_than_the_allocation() -> None:
    too_long = dataclasses.replace(MARKET, queue=(KEY_00,) * 101)
    with pytest.raises(ValueError, match="does not fit"):
        layouts.encode_market(too_long, size=layouts.LEGACY_MARKET_ALLOCATED_SIZE)


# --- rejection: always DecodeError, never an exception from struct or indexing ---------

DECODERS = {
    "job": (layouts.decode_job, JOB_BYTES),
    "run": (layouts.decode_run, RUN_BYTES),
    "market": (layouts.decode_market, MARKET_BYTES),
    "stake": (layouts.decode_stake, STAKE_BYTES),
}


@pytest.mark.parametrize("kind", DECODERS)
@pytest.mark.parametrize("other", DECODERS)
def test_decoders_reject_other_discriminators(kind: str, other: str) -> None:
    decode, _ = DECODERS[kind]
    _, other_bytes = DECODERS[other]
    if kind == other:
        decode(other_bytes)  # the right kind decodes
        return
    with pytest.raises(DecodeError, match=r"discriminator|bytes"):
        decode(other_bytes)


@pytest.mark.parametrize("kind", DECODERS)
def test_decoders_reject_a_flipped_discriminator_byte(kind: str) -> None:
    decode, data = DECODERS[kind]
    with pytest.raises(DecodeError, match="wrong discriminator"):
        decode(bytes([data[0] ^ 0xFF]) + data[1:])


@pytest.mark.parametrize("kind", DECODERS)
def test_decoders_reject_every_short_prefix(kind: str) -> None:
    decode, data = DECODERS[kind]
    shortest_valid = {
        "job": layouts.LEGACY_JOB_ALLOCATED_SIZE,
        "run": layouts.RUN_CONTENT_SIZE,
        "market": MarketOffset.QUEUE + 2 * 32,  # header and the two queued keys
        "stake": layouts.STAKE_CONTENT_SIZE,
    }[kind]
    for length in range(shortest_valid):
        with pytest.raises(DecodeError):
            decode(data[:length])


@pytest.mark.parametrize("length", [225, 226, 229, 231])
def test_job_lengths_between_content_and_legacy_are_rejected(length: int) -> None:
    # Only exactly 232 bytes is the legacy layout; nothing on chain is 225..231 long.
    with pytest.raises(DecodeError, match="neither 240 nor legacy 232"):
        layouts.decode_job(JOB_BYTES[:length])


def test_market_queue_length_overrunning_the_data_is_a_decode_error() -> None:
    overrun = bytearray(LEGACY_MARKET_BYTES)
    struct.pack_into("<I", overrun, MarketOffset.QUEUE_LEN, 101)  # 151 + 101 * 32 > 3_376
    with pytest.raises(DecodeError, match="overruns"):
        layouts.decode_market(bytes(overrun))
    struct.pack_into("<I", overrun, MarketOffset.QUEUE_LEN, 2**32 - 1)
    with pytest.raises(DecodeError, match="overruns"):
        layouts.decode_market(bytes(overrun))


def test_market_queue_exactly_filling_the_data_decodes() -> None:
    exact = bytearray(LEGACY_MARKET_BYTES[: MarketOffset.QUEUE + 32])
    assert len(layouts.decode_market(bytes(exact)).queue) == 1


@given(st.sampled_from(sorted(DECODERS)), st.binary(max_size=400))
def test_decoders_raise_only_decode_error_on_any_bytes_after_a_discriminator(
    kind: str, tail: bytes
) -> None:
    decode, data = DECODERS[kind]
    with contextlib.suppress(DecodeError):  # any other exception fails the test
        decode(data[:8] + tail)


def test_decode_error_carries_a_hint() -> None:
    with pytest.raises(DecodeError) as caught:
        layouts.decode_job(b"")
    assert caught.value.hint


# --- round trips ---------------------------------------------------------------------


@given(st.from_type(JobAccount))
def test_job_round_trips(job: JobAccount) -> None:
    data = layouts.encode_job(job)
    assert len(data) == (232 if job.timeout is None else 240)
    assert fields_of(layouts.decode_job(data)) == fields_of(job)


@given(st.from_type(RunAccount))
def test_run_round_trips(run: RunAccount) -> None:
    assert fields_of(layouts.decode_run(layouts.encode_run(run))) == fields_of(run)


@given(
    st.from_type(MarketAccount),
    st.lists(st.from_type(Pubkey), max_size=4).map(tuple),
    st.sampled_from([layouts.MARKET_ALLOCATED_SIZE, layouts.LEGACY_MARKET_ALLOCATED_SIZE]),
)
def test_market_round_trips_whatever_the_stale_tail(
    market: MarketAccount, stale: tuple[Pubkey, ...], size: int
) -> None:
    data = layouts.encode_market(market, size=size, stale_tail=stale)
    assert len(data) == size
    assert fields_of(layouts.decode_market(data)) == fields_of(market)


@given(st.from_type(StakeAccount))
def test_stake_round_trips(stake: StakeAccount) -> None:
    assert fields_of(layouts.decode_stake(layouts.encode_stake(stake))) == fields_of(stake)
