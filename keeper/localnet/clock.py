"""Slots, block height, recent blockhashes and the chain clock of the local chain.

The chain clock is independent of wall time: it starts at the world's genesis timestamp
and advances ``slot_ms`` per slot. Operators and tests may set it or skew it by days, as
test validators drift. Blockhashes are derived from the genesis hash and the slot, so a
chain replays identically.
"""

from __future__ import annotations

import hashlib
import struct
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Callable

from solders.hash import Hash

SLOTS_PER_EPOCH: Final = 432_000
# A blockhash is usable while block height <= its height + 150 (lastValidBlockHeight).
MAX_BLOCKHASH_AGE: Final = 150
# Slot and block height differ on every real cluster; so they do here, to expose mix-ups.
GENESIS_SLOT: Final = 1_000
GENESIS_BLOCK_HEIGHT: Final = 900
_BLOCK_TIMES_KEPT: Final = 100_000
_BLOCKHASHES_KEPT: Final = 2 * MAX_BLOCKHASH_AGE


@dataclass(frozen=True, slots=True)
class BlockhashInfo:
    blockhash: Hash
    last_valid_block_height: int


@dataclass(frozen=True, slots=True)
class EpochInfo:
    epoch: int
    slot_index: int
    slots_in_epoch: int
    epoch_start_slot: int


class ChainClock:
    """Slot, block height, blockhashes and ``unix_timestamp`` of the local chain."""

    def __init__(self, *, genesis_hash: Hash, unix_timestamp: int, slot_ms: int = 400) -> None:
        if slot_ms <= 0:
            raise ValueError(f"slot_ms must be positive, got {slot_ms}")
        self.genesis_hash = genesis_hash
        self.slot_ms = slot_ms
        self.slot = GENESIS_SLOT
        self.block_height = GENESIS_BLOCK_HEIGHT
        # unix_timestamp = anchor_timestamp + elapsed since anchor_slot + skew
        self._anchor_slot = GENESIS_SLOT
        self._anchor_timestamp = unix_timestamp
        self._skew_seconds = 0
        self._blockhash_heights: OrderedDict[Hash, int] = OrderedDict()
        self._block_times: OrderedDict[int, int] = OrderedDict()
        # Called with each slot as it ends (before the next one opens): notifications go out.
        self.slot_listeners: list[Callable[[int], None]] = []
        self._open_block()

    # -- time ---------------------------------------------------------------------------

    @property
    def unix_timestamp(self) -> int:
        return self._timestamp_at(self.slot)

    @property
    def skew_seconds(self) -> int:
        return self._skew_seconds

    @skew_seconds.setter
    def skew_seconds(self, seconds: int) -> None:
        """Offset the clock from its unskewed course (absolute, not cumulative)."""
        self._skew_seconds = seconds
        self._block_times[self.slot] = self.unix_timestamp

    def skew(self, seconds: int) -> int:
        """Move the clock by ``seconds`` (cumulative); returns the new timestamp."""
        self.skew_seconds = self._skew_seconds + seconds
        return self.unix_timestamp

    def set_unix_timestamp(self, unix_timestamp: int) -> None:
        """Make the current slot's timestamp ``unix_timestamp``; later slots follow on."""
        self._anchor_slot = self.slot
        self._anchor_timestamp = unix_timestamp - self._skew_seconds
        self._block_times[self.slot] = unix_timestamp

    def _timestamp_at(self, slot: int) -> int:
        elapsed_ms = (slot - self._anchor_slot) * self.slot_ms
        return self._anchor_timestamp + elapsed_ms // 1000 + self._skew_seconds

    def block_time(self, slot: int) -> int | None:
        """The timestamp recorded for ``slot``, or None if it is not (or no longer) known."""
        return self._block_times.get(slot)

    # -- slots and blockhashes ------------------------------------------------------------

    def advance(self, slots: int = 1) -> int:
        """Produce ``slots`` blocks (one per slot, none skipped); returns the new slot."""
        if slots < 0:
            raise ValueError(f"cannot advance by a negative number of slots: {slots}")
        for _ in range(slots):
            for listener in self.slot_listeners:
                listener(self.slot)
            self.slot += 1
            self.block_height += 1
            self._open_block()
        return self.slot

    def _open_block(self) -> None:
        self._blockhash_heights[self._blockhash_for(self.slot)] = self.block_height
        while len(self._blockhash_heights) > _BLOCKHASHES_KEPT:
            self._blockhash_heights.popitem(last=False)
        self._block_times[self.slot] = self.unix_timestamp
        while len(self._block_times) > _BLOCK_TIMES_KEPT:
            self._block_times.popitem(last=False)

    def _blockhash_for(self, slot: int) -> Hash:
        digest = hashlib.sha256(bytes(self.genesis_hash) + struct.pack("<Q", slot)).digest()
        return Hash(digest)

    @property
    def latest_blockhash(self) -> BlockhashInfo:
        return BlockhashInfo(
            blockhash=self._blockhash_for(self.slot),
            last_valid_block_height=self.block_height + MAX_BLOCKHASH_AGE,
        )

    def is_blockhash_valid(self, blockhash: Hash) -> bool:
        height = self._blockhash_heights.get(blockhash)
        return height is not None and self.block_height <= height + MAX_BLOCKHASH_AGE

    # -- epochs ---------------------------------------------------------------------------

    @property
    def epoch_info(self) -> EpochInfo:
        epoch, index = divmod(self.slot, SLOTS_PER_EPOCH)
        return EpochInfo(
            epoch=epoch,
            slot_index=index,
            slots_in_epoch=SLOTS_PER_EPOCH,
            epoch_start_slot=self.slot - index,
        )

    def clock_sysvar_data(self) -> bytes:
        """The 40 bytes of the Clock sysvar account at the current slot."""
        info = self.epoch_info
        return struct.pack(
            "<QqQQq",
            self.slot,
            self._timestamp_at(info.epoch_start_slot),
            info.epoch,
            info.epoch + 1,
            self.unix_timestamp,
        )
