"""Encode many JobAccounts at once with numpy: the scale world's million jobs in seconds.

A structured dtype with the JobAccount's offsets (``keeper.program.layouts.JobOffset``)
lays out every row exactly as ``layouts.encode_job`` does; a test keeps the two equal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from keeper.program.layouts import JOB_ALLOCATED_SIZE, JOB_DISCRIMINATOR, JobOffset

_KEY: Final = (np.uint8, (32,))

JOB_DTYPE: Final = np.dtype(
    {
        "names": [
            "discriminator",
            "ipfs_job",
            "ipfs_result",
            "market",
            "node",
            "payer",
            "price",
            "project",
            "state",
            "time_end",
            "time_start",
            "timeout",
        ],
        "formats": [
            (np.uint8, (8,)),
            _KEY,
            _KEY,
            _KEY,
            _KEY,
            _KEY,
            "<u8",
            _KEY,
            np.uint8,
            "<i8",
            "<i8",
            "<i8",
        ],
        "offsets": [
            0,
            JobOffset.IPFS_JOB,
            JobOffset.IPFS_RESULT,
            JobOffset.MARKET,
            JobOffset.NODE,
            JobOffset.PAYER,
            JobOffset.PRICE,
            JobOffset.PROJECT,
            JobOffset.STATE,
            JobOffset.TIME_END,
            JobOffset.TIME_START,
            JobOffset.TIMEOUT,
        ],
        "itemsize": JOB_ALLOCATED_SIZE,
    }
)

KeyColumn = npt.NDArray[np.uint8]  # shape (n, 32), or (32,) to repeat one key
IntColumn = npt.NDArray[np.int64] | int


@dataclass(frozen=True, slots=True)
class JobColumns:
    """The fields of ``n`` jobs, one array per field (a scalar or single key repeats)."""

    market: KeyColumn
    payer: KeyColumn
    state: IntColumn
    time_end: IntColumn
    node: KeyColumn | None = None
    project: KeyColumn | None = None
    ipfs_job: KeyColumn | None = None
    ipfs_result: KeyColumn | None = None
    price: IntColumn = 0
    time_start: IntColumn = 0
    timeout: IntColumn = 3600


def encode_jobs(count: int, columns: JobColumns) -> bytes:
    """``count`` current-layout (240-byte) JobAccounts, concatenated."""
    rows = np.zeros(count, dtype=JOB_DTYPE)
    rows["discriminator"] = np.frombuffer(JOB_DISCRIMINATOR, dtype=np.uint8)
    rows["market"] = columns.market
    rows["payer"] = columns.payer
    rows["state"] = columns.state
    rows["time_end"] = columns.time_end
    rows["time_start"] = columns.time_start
    rows["timeout"] = columns.timeout
    rows["price"] = columns.price
    for name in ("node", "project", "ipfs_job", "ipfs_result"):
        value = getattr(columns, name)
        if value is not None:
            rows[name] = value
    return rows.tobytes()


def key_column(keys: bytes) -> KeyColumn:
    """Concatenated 32-byte keys as an (n, 32) array."""
    return np.frombuffer(keys, dtype=np.uint8).reshape(-1, 32)
