"""Batch decoding with numpy: many accounts (or ``dataSlice`` parts of them) at once.

A scan of a million jobs must not build a million Python objects. Records of one size
are concatenated and viewed through a structured dtype whose fields sit at the layout's
named offsets, shifted by the slice's start. Only fields that lie wholly inside the slice
are present. Pubkeys come out as 32-byte void fields: ``pubkey_at(array, i, name)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from solders.pubkey import Pubkey

from keeper.errors import DecodeError
from keeper.program.layouts import (
    JOB_ALLOCATED_SIZE,
    RUN_ALLOCATED_SIZE,
    JobOffset,
    RunOffset,
)

StructArray = npt.NDArray[np.void]


@dataclass(frozen=True, slots=True)
class DataSlice:
    """The ``dataSlice`` of a getProgramAccounts request: bytes [offset, offset+length)."""

    offset: int
    length: int

    @property
    def end(self) -> int:
        return self.offset + self.length


_PUBKEY: Final = "V32"
_HASH: Final = "V32"

JOB_FIELDS: Final[tuple[tuple[str, int, str], ...]] = (
    ("discriminator", 0, "V8"),
    ("ipfs_job", JobOffset.IPFS_JOB, _HASH),
    ("ipfs_result", JobOffset.IPFS_RESULT, _HASH),
    ("market", JobOffset.MARKET, _PUBKEY),
    ("node", JobOffset.NODE, _PUBKEY),
    ("payer", JobOffset.PAYER, _PUBKEY),
    ("price", JobOffset.PRICE, "<u8"),
    ("project", JobOffset.PROJECT, _PUBKEY),
    ("state", JobOffset.STATE, "u1"),
    ("time_end", JobOffset.TIME_END, "<i8"),
    ("time_start", JobOffset.TIME_START, "<i8"),
    ("timeout", JobOffset.TIMEOUT, "<i8"),
)

RUN_FIELDS: Final[tuple[tuple[str, int, str], ...]] = (
    ("discriminator", 0, "V8"),
    ("job", RunOffset.JOB, _PUBKEY),
    ("node", RunOffset.NODE, _PUBKEY),
    ("payer", RunOffset.PAYER, _PUBKEY),
    ("state", RunOffset.STATE, "u1"),
    ("time", RunOffset.TIME, "<i8"),
)

# The slices the keeper's scans ask for: only the bytes a decision reads cross the wire.
# Finished jobs: payer .. time_end (market is known from the per-market filter).
DONE_JOB_SLICE: Final = DataSlice(JobOffset.PAYER, JobOffset.TIME_END + 8 - JobOffset.PAYER)
# A full read of every job, for every task at once: market .. time_end (145 bytes) holds
# what finished jobs (payer, state, time_end), stopped jobs (market, state) and the census
# (market, state) read. The layout (legacy or not) comes from the answer's ``space``.
JOB_READ_SLICE: Final = DataSlice(JobOffset.MARKET, JobOffset.TIME_END + 8 - JobOffset.MARKET)
FULL_JOB: Final = DataSlice(0, JOB_ALLOCATED_SIZE)
FULL_RUN: Final = DataSlice(0, RUN_ALLOCATED_SIZE)


def _dtype(fields: tuple[tuple[str, int, str], ...], data_slice: DataSlice) -> np.dtype[np.void]:
    names: list[str] = []
    formats: list[str] = []
    offsets: list[int] = []
    for name, offset, fmt in fields:
        size = np.dtype(fmt).itemsize
        if offset >= data_slice.offset and offset + size <= data_slice.end:
            names.append(name)
            formats.append(fmt)
            offsets.append(offset - data_slice.offset)
    return np.dtype(
        {"names": names, "formats": formats, "offsets": offsets, "itemsize": data_slice.length}
    )


def job_dtype(data_slice: DataSlice = FULL_JOB) -> np.dtype[np.void]:
    return _dtype(JOB_FIELDS, data_slice)


def run_dtype(data_slice: DataSlice = FULL_RUN) -> np.dtype[np.void]:
    return _dtype(RUN_FIELDS, data_slice)


def decode_records(buffer: bytes, dtype: np.dtype[np.void]) -> StructArray:
    """View ``buffer`` (records of ``dtype.itemsize`` bytes, back to back) as an array."""
    if dtype.itemsize == 0:
        return np.zeros(0, dtype=dtype)
    if len(buffer) % dtype.itemsize:
        raise DecodeError(
            f"batch of {len(buffer)} bytes is not a whole number of {dtype.itemsize}-byte records"
        )
    return np.frombuffer(buffer, dtype=dtype)


def decode_jobs(buffer: bytes, data_slice: DataSlice = FULL_JOB) -> StructArray:
    return decode_records(buffer, job_dtype(data_slice))


def decode_runs(buffer: bytes, data_slice: DataSlice = FULL_RUN) -> StructArray:
    return decode_records(buffer, run_dtype(data_slice))


def pubkey_at(records: StructArray, index: int, field: str) -> Pubkey:
    return Pubkey.from_bytes(records[field][index].tobytes())
