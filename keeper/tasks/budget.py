"""Fee policy, pure: the unit price and the spending guards.

A transaction's fee and the unit limit are computed where they are used: the fee by
``keeper.program.limits.fee_lamports``, the limit by the sender from its simulation.

Timestamps are the caller's monotonic clock readings; nothing here reads a clock.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Sequence

HOUR_SECONDS: Final = 3_600.0


class PriceSource(StrEnum):
    RPC = "rpc"  # a percentile of getRecentPrioritizationFees
    FLOOR_FALLBACK = "floor_fallback"  # the fee source failed: the configured floor, said loudly


@dataclass(frozen=True, slots=True)
class PriceChoice:
    micro_lamports: int
    source: PriceSource


def percentile_of(values: Sequence[int], percentile: float) -> int:
    """Nearest-rank percentile (0 < p <= 100) of a non-empty sequence."""
    if not values:
        raise ValueError("no values")
    if not 0 < percentile <= 100:
        raise ValueError(f"percentile must be in (0, 100], not {percentile}")
    ordered = sorted(values)
    rank = math.ceil(percentile / 100 * len(ordered))
    return ordered[max(rank, 1) - 1]


def choose_unit_price(
    recent_fees: Sequence[int] | None, *, percentile: float, floor: int, cap: int
) -> PriceChoice:
    """The compute-unit price in micro-lamports, within [floor, cap].

    ``recent_fees`` is None when the fee source failed: the floor, marked FLOOR_FALLBACK so
    logs and metrics say so (zero only if the floor is configured as zero). An empty list
    (the node knows no recent fees) is a successful answer: the floor, from "rpc".
    """
    if floor < 0 or cap < floor:
        raise ValueError(f"need 0 <= floor <= cap, got floor={floor} cap={cap}")
    if recent_fees is None:
        return PriceChoice(floor, PriceSource.FLOOR_FALLBACK)
    wanted = percentile_of(recent_fees, percentile) if recent_fees else floor
    return PriceChoice(min(cap, max(floor, wanted)), PriceSource.RPC)


def above_balance_floor(balance: int, cost: int, floor: int) -> bool:
    """Sending ``cost`` lamports (fees and claim rent) keeps the balance at or above ``floor``."""
    return balance - cost >= floor


@dataclass(slots=True)
class FeeBudget:
    """A rolling budget: lamports spent within the last ``window_seconds`` stay ≤ ``limit``.

    ``now`` is a monotonic timestamp in seconds from the caller. Count fees and claim
    rent alike: both leave the keeper's wallet. Transactions in flight at once each
    ``reserve`` their worst case (fee cap plus rent) before sending and ``release`` it once
    their actual cost is ``spend``-ed, so concurrent sends can never overrun the limit.
    """

    limit: int
    window_seconds: float = HOUR_SECONDS
    _spends: deque[tuple[float, int]] = field(default_factory=deque, init=False, repr=False)
    _total: int = field(default=0, init=False)
    _held: int = field(default=0, init=False)
    _released: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.limit < 0 or self.window_seconds <= 0:
            raise ValueError(f"need limit >= 0 and a positive window, got {self}")

    def spent(self, now: float) -> int:
        self._expire(now)
        return self._total

    @property
    def held(self) -> int:
        """Lamports reserved by transactions in flight (not yet spent or released)."""
        return self._held

    def allows(self, now: float, lamports: int) -> bool:
        return self.spent(now) + self._held + lamports <= self.limit

    def reserve(self, now: float, lamports: int) -> bool:
        """Hold ``lamports`` for a send if the budget allows them; False (nothing held) if not."""
        if lamports < 0:
            raise ValueError(f"cannot reserve {lamports} lamports")
        if not self.allows(now, lamports):
            return False
        self._held += lamports
        return True

    def release(self, lamports: int) -> None:
        """Give back a reservation (after its actual cost was spent, or nothing was sent)."""
        if not 0 <= lamports <= self._held:
            raise ValueError(f"cannot release {lamports} of {self._held} lamports held")
        self._held -= lamports
        self._released += lamports

    @property
    def released_total(self) -> int:
        """Every lamport ever released: a difference of two readings is what was released
        between them (a balance read meanwhile may not show those batches' fees yet)."""
        return self._released

    def spend(self, now: float, lamports: int) -> None:
        if lamports < 0:
            raise ValueError(f"cannot spend {lamports} lamports")
        if self._spends and now < self._spends[-1][0]:
            raise ValueError("timestamps must not go backwards (use a monotonic clock)")
        self._expire(now)
        self._spends.append((now, lamports))
        self._total += lamports

    def _expire(self, now: float) -> None:
        while self._spends and self._spends[0][0] <= now - self.window_seconds:
            self._total -= self._spends.popleft()[1]
