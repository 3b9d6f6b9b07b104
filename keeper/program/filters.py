"""getProgramAccounts filters and slices, one function per question.

Filters are plain JSON-RPC objects (``{"memcmp": {"offset", "bytes"}}``) with base58
``bytes``, the encoding every RPC node accepts. Offsets come from the named layouts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

import based58

from keeper.program.layouts import (
    JOB_ALLOCATED_SIZE,
    JOB_DISCRIMINATOR,
    LEGACY_JOB_ALLOCATED_SIZE,
    MARKET_DISCRIMINATOR,
    MARKET_TERMS_SIZE,
    RUN_DISCRIMINATOR,
    JobOffset,
    RunOffset,
)

if TYPE_CHECKING:
    from solders.pubkey import Pubkey

    from keeper.program.batch import DataSlice
    from keeper.program.state import JobState


class Memcmp(TypedDict):
    offset: int
    bytes: str


class MemcmpFilter(TypedDict):
    memcmp: Memcmp


class DataSizeFilter(TypedDict):
    dataSize: int


Filter = MemcmpFilter | DataSizeFilter


class DataSliceParam(TypedDict):
    offset: int
    length: int


def memcmp(offset: int, value: bytes) -> MemcmpFilter:
    return {"memcmp": {"offset": offset, "bytes": based58.b58encode(value).decode()}}


def data_size(size: int) -> DataSizeFilter:
    return {"dataSize": size}


def is_job() -> MemcmpFilter:
    return memcmp(0, JOB_DISCRIMINATOR)


def is_run() -> MemcmpFilter:
    return memcmp(0, RUN_DISCRIMINATOR)


def is_market() -> MemcmpFilter:
    return memcmp(0, MARKET_DISCRIMINATOR)


def jobs_in_state(state: JobState) -> list[Filter]:
    """Current-layout jobs (240 bytes) in ``state``. Legacy jobs are counted apart."""
    return [is_job(), memcmp(JobOffset.STATE, bytes([state])), data_size(JOB_ALLOCATED_SIZE)]


def jobs_in_state_of_market(state: JobState, market: Pubkey) -> list[Filter]:
    """As ``jobs_in_state``, narrowed to one market: splits a mainnet-sized scan."""
    return [*jobs_in_state(state), memcmp(JobOffset.MARKET, bytes(market))]


def legacy_jobs_in_state(state: JobState) -> list[Filter]:
    """232-byte jobs the program cannot load: only ever counted."""
    return [
        is_job(),
        memcmp(JobOffset.STATE, bytes([state])),
        data_size(LEGACY_JOB_ALLOCATED_SIZE),
    ]


def all_runs() -> list[Filter]:
    return [is_run()]


def runs_of_job(job: Pubkey) -> list[Filter]:
    return [is_run(), memcmp(RunOffset.JOB, bytes(job))]


def all_markets() -> list[Filter]:
    return [is_market()]


def data_slice(part: DataSlice) -> DataSliceParam:
    return {"offset": part.offset, "length": part.length}


def market_terms() -> DataSliceParam:
    """A market's terms, everything before its queue (147 of its 10,224 bytes)."""
    return {"offset": 0, "length": MARKET_TERMS_SIZE}


def no_data() -> DataSliceParam:
    """Keys only: for counting accounts without moving their bytes."""
    return {"offset": 0, "length": 0}
