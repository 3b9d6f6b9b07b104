"""Due times on chain time: when an account the live feed reported becomes actionable.

Between full reads the keeper learns of changes from the live feed; rather than re-judge
everything on every clock tick, each account is filed under the first chain second at
which its task's own rule holds, and taken out when chain time reaches it. The rules are
the tasks' (``finished_jobs.is_expired``, ``expired_runs``'s strict timeout), solved for
``now``; tests hold each to its rule at the boundary. Chain time only: no clock here.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Generic, TypeVar

_K = TypeVar("_K")


def clean_due_at(time_end: int, job_expiration: int) -> int:
    """First chain time at which ``job_expiration < now - time_end`` holds (strict)."""
    return time_end + job_expiration + 1


def quit_due_at(run_time: int, timeout: int, grace_seconds: int) -> int:
    """First chain time at which ``now > run.time + job.timeout + grace`` holds (strict)."""
    return run_time + timeout + grace_seconds + 1


@dataclass(slots=True)
class DueSchedule(Generic[_K]):
    """Keys filed under a due time; ``pop_due(now)`` hands out those due, oldest first, and
    ``latest`` names the one due last (what a bounded holder gives up first).

    Re-filing a key replaces its due time; ``discard`` forgets it. Both are O(log n): the
    heaps keep stale entries and skip them when they surface.
    """

    _due: dict[_K, int] = field(default_factory=dict)
    _heap: list[tuple[int, int, _K]] = field(default_factory=list)
    _latest_heap: list[tuple[int, int, _K]] = field(default_factory=list)  # due, order negated
    _order: int = 0  # ties break by filing order: never compares keys

    def __len__(self) -> int:
        return len(self._due)

    def __contains__(self, key: object) -> bool:
        return key in self._due

    def file(self, key: _K, due: int) -> None:
        if self._due.get(key) == due:
            return
        self._due[key] = due
        self._order += 1
        heapq.heappush(self._heap, (due, self._order, key))
        heapq.heappush(self._latest_heap, (-due, -self._order, key))
        self._compact()

    def discard(self, key: _K) -> None:
        self._due.pop(key, None)
        self._compact()

    def due_at(self, key: _K) -> int | None:
        return self._due.get(key)

    def next_due(self) -> int | None:
        """The earliest due time filed, or None when nothing is."""
        self._drop_stale()
        return self._heap[0][0] if self._heap else None

    def latest(self) -> tuple[_K, int] | None:
        """The key due last (of equal due times, the one filed last) and its due time."""
        heap = self._latest_heap
        while heap:
            due, _, key = heap[0]
            if self._due.get(key) == -due:
                return key, -due
            heapq.heappop(heap)
        return None

    def pop_due(self, now: int, limit: int | None = None) -> list[tuple[_K, int]]:
        """Keys due at chain time ``now`` (due <= now), oldest due first, with their due
        times; at most ``limit`` of them. They are no longer filed."""
        out: list[tuple[_K, int]] = []
        while self._heap and (limit is None or len(out) < limit):
            self._drop_stale()
            if not self._heap or self._heap[0][0] > now:
                break
            due, _, key = heapq.heappop(self._heap)
            del self._due[key]
            out.append((key, due))
        return out

    def _drop_stale(self) -> None:
        while self._heap:
            due, _, key = self._heap[0]
            if self._due.get(key) == due:
                return
            heapq.heappop(self._heap)

    def _compact(self) -> None:
        # Stale entries never outnumber live ones by much: memory follows what is filed.
        if len(self._heap) + len(self._latest_heap) > 4 * len(self._due) + 128:
            self._heap = [(d, o, k) for d, o, k in self._heap if self._due.get(k) == d]
            heapq.heapify(self._heap)
            live = self._latest_heap
            self._latest_heap = [(d, o, k) for d, o, k in live if self._due.get(k) == -d]
            heapq.heapify(self._latest_heap)
