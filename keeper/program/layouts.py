"""Byte layouts of the accounts the keeper reads, with fast single-account codecs.

Anchor accounts: an 8-byte discriminator (``sha256("account:<Name>")[:8]``), then Borsh
fields without padding. Accounts are *allocated* larger than their Borsh content
(``8 + size_of::<T>()``); nothing on chain has the Borsh length, so never filter on it.

The decoders here use ``struct`` at named offsets. ``keeper.program.anchor`` decodes the
same bytes through anchorpy; a property test keeps the two in agreement.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace
from typing import Final

from solders.pubkey import Pubkey

from keeper.errors import DecodeError

PUBKEY_LEN: Final = 32
DISCRIMINATOR_LEN: Final = 8

JOB_DISCRIMINATOR: Final = bytes.fromhex("5b10a2052dd27d41")
RUN_DISCRIMINATOR: Final = bytes.fromhex("c2a96ee6eb0be116")
MARKET_DISCRIMINATOR: Final = bytes.fromhex("c94ebbe1f0c6c9fb")
STAKE_DISCRIMINATOR: Final = bytes.fromhex("509e437c32bdc0ff")


class JobOffset:
    """Field offsets in a JobAccount (current and legacy layouts share all but timeout)."""

    IPFS_JOB: Final = 8
    IPFS_RESULT: Final = 40
    MARKET: Final = 72
    NODE: Final = 104
    PAYER: Final = 136
    PRICE: Final = 168
    PROJECT: Final = 176
    STATE: Final = 208
    TIME_END: Final = 209
    TIME_START: Final = 217
    TIMEOUT: Final = 225


JOB_ALLOCATED_SIZE: Final = 240
JOB_CONTENT_SIZE: Final = 233
# Jobs created before November 2024 have no timeout field; the program cannot load them.
LEGACY_JOB_ALLOCATED_SIZE: Final = 232
LEGACY_JOB_CONTENT_SIZE: Final = 225


class RunOffset:
    JOB: Final = 8
    NODE: Final = 40
    PAYER: Final = 72
    STATE: Final = 104
    TIME: Final = 105


RUN_ALLOCATED_SIZE: Final = 120
RUN_CONTENT_SIZE: Final = 113


class MarketOffset:
    AUTHORITY: Final = 8
    JOB_EXPIRATION: Final = 40
    JOB_PRICE: Final = 48
    JOB_TIMEOUT: Final = 56
    JOB_TYPE: Final = 64
    VAULT: Final = 65
    VAULT_BUMP: Final = 97
    NODE_ACCESS_KEY: Final = 98
    NODE_XNOS_MINIMUM: Final = 130
    QUEUE_TYPE: Final = 146
    QUEUE_LEN: Final = 147
    QUEUE: Final = 151


MARKET_HEADER_SIZE: Final = MarketOffset.QUEUE
# The market's terms (everything before the queue): what clean's and claim's decisions
# read. A ``dataSlice`` of this many bytes from offset 0 moves 147 bytes, not 10,224.
MARKET_TERMS_SIZE: Final = MarketOffset.QUEUE_LEN
MARKET_ALLOCATED_SIZE: Final = 10_224  # room for 314 queue entries
MARKET_QUEUE_CAPACITY: Final = 314
LEGACY_MARKET_ALLOCATED_SIZE: Final = 3_376  # markets opened before April 2024: 100 entries
LEGACY_MARKET_QUEUE_CAPACITY: Final = 100


class StakeOffset:
    AMOUNT: Final = 8
    AUTHORITY: Final = 16
    DURATION: Final = 48
    TIME_UNSTAKE: Final = 56
    VAULT: Final = 64
    VAULT_BUMP: Final = 96
    XNOS: Final = 97


STAKE_ALLOCATED_SIZE: Final = 120
STAKE_CONTENT_SIZE: Final = 113

# Lamports held by accounts of each allocated size at the default rent rate.
JOB_RENT_LAMPORTS: Final = 2_561_280
RUN_RENT_LAMPORTS: Final = 1_726_080
MARKET_RENT_LAMPORTS: Final = 72_049_920

_U64 = struct.Struct("<Q")
_I64 = struct.Struct("<q")
_U32 = struct.Struct("<I")
_JOB_TAIL = struct.Struct("<Q32xBqq")  # price, (project), state, time_end, time_start
_RUN_TAIL = struct.Struct("<Bq")
_MARKET_NUMBERS = struct.Struct("<qQqB")
_STAKE_NUMBERS = struct.Struct("<Q32xQq")


@dataclass(frozen=True, slots=True)
class JobAccount:
    ipfs_job: bytes
    ipfs_result: bytes
    market: Pubkey
    node: Pubkey
    payer: Pubkey
    price: int
    project: Pubkey
    state: int  # the raw byte: see keeper.program.state.JobState
    time_end: int
    time_start: int
    timeout: int | None  # None for legacy 232-byte accounts

    @property
    def is_legacy(self) -> bool:
        return self.timeout is None


@dataclass(frozen=True, slots=True)
class RunAccount:
    job: Pubkey
    node: Pubkey
    payer: Pubkey
    state: int
    time: int


@dataclass(frozen=True, slots=True)
class MarketAccount:
    authority: Pubkey
    job_expiration: int
    job_price: int
    job_timeout: int
    job_type: int
    vault: Pubkey
    vault_bump: int
    node_access_key: Pubkey
    node_xnos_minimum: int
    queue_type: int
    # None when only the terms were read (``decode_market_terms``): not an empty queue,
    # an unread one, which the census refuses.
    queue: tuple[Pubkey, ...] | None


@dataclass(frozen=True, slots=True)
class StakeAccount:
    amount: int
    authority: Pubkey
    duration: int
    time_unstake: int
    vault: Pubkey
    vault_bump: int
    xnos: int


def _pubkey(data: bytes, offset: int) -> Pubkey:
    return Pubkey.from_bytes(data[offset : offset + PUBKEY_LEN])


def _u128(data: bytes, offset: int) -> int:
    return int.from_bytes(data[offset : offset + 16], "little")


def _check(data: bytes, discriminator: bytes, min_len: int, kind: str) -> None:
    if len(data) < min_len:
        raise DecodeError(f"{kind}: {len(data)} bytes, need at least {min_len}")
    if data[:DISCRIMINATOR_LEN] != discriminator:
        raise DecodeError(f"{kind}: wrong discriminator {data[:DISCRIMINATOR_LEN].hex()}")


def is_legacy_job(data: bytes) -> bool:
    """A job created before November 2024: right discriminator, 232 bytes allocated."""
    return len(data) == LEGACY_JOB_ALLOCATED_SIZE and data[:8] == JOB_DISCRIMINATOR


def decode_job(data: bytes) -> JobAccount:
    """Decode a full JobAccount (240 bytes) or a legacy one (232 bytes, no timeout)."""
    _check(data, JOB_DISCRIMINATOR, LEGACY_JOB_CONTENT_SIZE, "JobAccount")
    legacy = len(data) < JOB_CONTENT_SIZE
    if legacy and len(data) != LEGACY_JOB_ALLOCATED_SIZE:
        raise DecodeError(f"JobAccount: {len(data)} bytes is neither 240 nor legacy 232")
    price, state, time_end, time_start = _JOB_TAIL.unpack_from(data, JobOffset.PRICE)
    return JobAccount(
        ipfs_job=bytes(data[JobOffset.IPFS_JOB : JobOffset.IPFS_JOB + 32]),
        ipfs_result=bytes(data[JobOffset.IPFS_RESULT : JobOffset.IPFS_RESULT + 32]),
        market=_pubkey(data, JobOffset.MARKET),
        node=_pubkey(data, JobOffset.NODE),
        payer=_pubkey(data, JobOffset.PAYER),
        price=price,
        project=_pubkey(data, JobOffset.PROJECT),
        state=state,
        time_end=time_end,
        time_start=time_start,
        timeout=None if legacy else _I64.unpack_from(data, JobOffset.TIMEOUT)[0],
    )


def decode_run(data: bytes) -> RunAccount:
    _check(data, RUN_DISCRIMINATOR, RUN_CONTENT_SIZE, "RunAccount")
    state, time = _RUN_TAIL.unpack_from(data, RunOffset.STATE)
    return RunAccount(
        job=_pubkey(data, RunOffset.JOB),
        node=_pubkey(data, RunOffset.NODE),
        payer=_pubkey(data, RunOffset.PAYER),
        state=state,
        time=time,
    )


def decode_market(data: bytes) -> MarketAccount:
    """Decode a MarketAccount, reading exactly ``queue length`` entries.

    The bytes after the queue are not zeroed when it shrinks: stale keys stay there.
    """
    _check(data, MARKET_DISCRIMINATOR, MARKET_HEADER_SIZE, "MarketAccount")
    (queue_len,) = _U32.unpack_from(data, MarketOffset.QUEUE_LEN)
    queue_end = MarketOffset.QUEUE + queue_len * PUBKEY_LEN
    if queue_end > len(data):
        raise DecodeError(f"MarketAccount: queue of {queue_len} overruns {len(data)} bytes")
    queue = tuple(
        Pubkey.from_bytes(data[offset : offset + PUBKEY_LEN])
        for offset in range(MarketOffset.QUEUE, queue_end, PUBKEY_LEN)
    )
    return replace(decode_market_terms(data), queue=queue)


def decode_market_terms(data: bytes) -> MarketAccount:
    """Decode a MarketAccount's terms from at least its first ``MARKET_TERMS_SIZE`` bytes
    (a ``dataSlice``): every field but the queue, which is marked unread."""
    _check(data, MARKET_DISCRIMINATOR, MARKET_TERMS_SIZE, "MarketAccount terms")
    expiration, price, timeout, job_type = _MARKET_NUMBERS.unpack_from(
        data, MarketOffset.JOB_EXPIRATION
    )
    return MarketAccount(
        authority=_pubkey(data, MarketOffset.AUTHORITY),
        job_expiration=expiration,
        job_price=price,
        job_timeout=timeout,
        job_type=job_type,
        vault=_pubkey(data, MarketOffset.VAULT),
        vault_bump=data[MarketOffset.VAULT_BUMP],
        node_access_key=_pubkey(data, MarketOffset.NODE_ACCESS_KEY),
        node_xnos_minimum=_u128(data, MarketOffset.NODE_XNOS_MINIMUM),
        queue_type=data[MarketOffset.QUEUE_TYPE],
        queue=None,
    )


def decode_stake(data: bytes) -> StakeAccount:
    _check(data, STAKE_DISCRIMINATOR, STAKE_CONTENT_SIZE, "StakeAccount")
    amount, duration, time_unstake = _STAKE_NUMBERS.unpack_from(data, StakeOffset.AMOUNT)
    # _STAKE_NUMBERS skips the authority between amount and duration.
    return StakeAccount(
        amount=amount,
        authority=_pubkey(data, StakeOffset.AUTHORITY),
        duration=duration,
        time_unstake=time_unstake,
        vault=_pubkey(data, StakeOffset.VAULT),
        vault_bump=data[StakeOffset.VAULT_BUMP],
        xnos=_u128(data, StakeOffset.XNOS),
    )


# --- encoders: used by the local chain, fixtures and tests -------------------------------


def _pad(content: bytes, size: int) -> bytes:
    if len(content) > size:
        raise ValueError(f"content of {len(content)} bytes does not fit {size}")
    return content + bytes(size - len(content))


def encode_job(job: JobAccount, *, size: int | None = None) -> bytes:
    """Serialize ``job`` to its allocated size (232 when ``timeout`` is None, else 240)."""
    content = b"".join(
        (
            JOB_DISCRIMINATOR,
            _pad(job.ipfs_job, 32),
            _pad(job.ipfs_result, 32),
            bytes(job.market),
            bytes(job.node),
            bytes(job.payer),
            _U64.pack(job.price),
            bytes(job.project),
            bytes([job.state]),
            _I64.pack(job.time_end),
            _I64.pack(job.time_start),
            b"" if job.timeout is None else _I64.pack(job.timeout),
        )
    )
    default = LEGACY_JOB_ALLOCATED_SIZE if job.timeout is None else JOB_ALLOCATED_SIZE
    return _pad(content, size or default)


def encode_run(run: RunAccount) -> bytes:
    content = b"".join(
        (
            RUN_DISCRIMINATOR,
            bytes(run.job),
            bytes(run.node),
            bytes(run.payer),
            bytes([run.state]),
            _I64.pack(run.time),
        )
    )
    return _pad(content, RUN_ALLOCATED_SIZE)


def encode_market(
    market: MarketAccount,
    *,
    size: int = MARKET_ALLOCATED_SIZE,
    stale_tail: tuple[Pubkey, ...] = (),
) -> bytes:
    """Serialize ``market``; ``stale_tail`` writes keys after the queue, as the chain does."""
    if market.queue is None:
        raise ValueError("a market read by its terms only has no queue to serialize")
    content = b"".join(
        (
            MARKET_DISCRIMINATOR,
            bytes(market.authority),
            _MARKET_NUMBERS.pack(
                market.job_expiration, market.job_price, market.job_timeout, market.job_type
            ),
            bytes(market.vault),
            bytes([market.vault_bump]),
            bytes(market.node_access_key),
            market.node_xnos_minimum.to_bytes(16, "little"),
            bytes([market.queue_type]),
            _U32.pack(len(market.queue)),
            *(bytes(key) for key in market.queue),
            *(bytes(key) for key in stale_tail),
        )
    )
    return _pad(content, size)


def encode_stake(stake: StakeAccount) -> bytes:
    content = b"".join(
        (
            STAKE_DISCRIMINATOR,
            _U64.pack(stake.amount),
            bytes(stake.authority),
            _U64.pack(stake.duration),
            _I64.pack(stake.time_unstake),
            bytes(stake.vault),
            bytes([stake.vault_bump]),
            stake.xnos.to_bytes(16, "little"),
        )
    )
    return _pad(content, STAKE_ALLOCATED_SIZE)
