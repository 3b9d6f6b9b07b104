"""Which account keys a scan has already yielded: duplicates in an answer are dropped.

An RPC node that answers one account twice (a bug, a proxy, a page overlap) must not
make a decision see it twice: two actions on one target stop the packer, and every count
would lie. The keys seen are kept as sorted runs of their first 8 bytes (8 bytes a key,
not a Python object each: 8 MB at a million accounts); a batch is checked against every
run with a binary search and becomes a run itself, and runs of similar size merge (a
binary counter: about log2(n / batch) runs). A key's 8 bytes are its four 64-bit words
mixed by odd multipliers (any two keys that differ in one word differ there), so two
distinct accounts share them with a probability of about n^2 / 2^65 (3e-8 at a million
accounts); such an account would be taken for a duplicate and wait for the next pass.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from keeper.program.layouts import PUBKEY_LEN

# Odd 64-bit multipliers (the golden ratio's and splitmix64's constants).
_MIX: Final = np.array(
    [0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB, 0xD6E8FEB86659FD93],
    dtype=np.uint64,
)


class SeenKeys:
    """Keys met so far; ``fresh`` says which of a batch are new and remembers them."""

    def __init__(self) -> None:
        self._runs: list[npt.NDArray[np.uint64]] = []
        self.duplicates = 0

    def fresh(self, keys: npt.NDArray[np.uint8]) -> npt.NDArray[np.bool_]:
        """For an ``(n, 32)`` array of keys: True where a key was not met before (nor
        earlier in the same batch). The new ones are remembered."""
        count = len(keys)
        if keys.shape[1:] != (PUBKEY_LEN,):
            raise ValueError(f"keys must be (n, {PUBKEY_LEN}) bytes, not {keys.shape}")
        mask = np.zeros(count, dtype=np.bool_)
        if not count:
            return mask
        words = np.ascontiguousarray(keys).view("<u8")
        hashes = (words * _MIX).sum(axis=1, dtype=np.uint64)  # wraps modulo 2**64
        unique, first = np.unique(hashes, return_index=True)
        new = np.ones(len(unique), dtype=np.bool_)
        for run in self._runs:
            at = np.minimum(np.searchsorted(run, unique), len(run) - 1)
            new &= run[at] != unique
        mask[first[new]] = True
        self._push(unique[new].astype(np.uint64))
        self.duplicates += count - int(np.count_nonzero(mask))
        return mask

    def _push(self, run: npt.NDArray[np.uint64]) -> None:
        if not len(run):
            return
        self._runs.append(run)
        while len(self._runs) > 1 and len(self._runs[-2]) <= 2 * len(self._runs[-1]):
            last = self._runs.pop()
            merged = np.concatenate((self._runs.pop(), last))
            merged.sort(kind="stable")  # two sorted runs: timsort merges them in one pass
            self._runs.append(merged)
