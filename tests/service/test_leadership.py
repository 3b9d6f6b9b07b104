"""The election against an in-memory Lease store with the API server's concurrency rule
(a stale resourceVersion is a 409) and a hand-moved clock: who leads, when sends stop,
what release does, and that the leader's calls end before its renew deadline."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keeper.errors import ConfigError
from keeper.service.leadership import (
    LeaseElector,
    LeaseLost,
    LeaseRecord,
    StoredLease,
    lease_namespace,
    next_record,
)
from keeper.service.metrics import Metrics, new_metrics
from keeper.service.settings import LeaderElectionSettings

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SETTINGS = LeaderElectionSettings(
    enabled=True, lease_duration_seconds=15, renew_deadline_seconds=10, retry_period_seconds=2
)


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class MemoryLeases:
    """One Lease, as the API server keeps it; ``down`` makes every call fail."""

    clock: Clock
    stored: StoredLease | None = None
    version: int = 0
    down: bool = False
    hang: bool = False
    timeouts: list[float] = field(default_factory=list)
    replay: StoredLease | None = None  # answered once by the next get (a read that raced)

    async def _call(self, timeout_s: float) -> None:
        self.timeouts.append(timeout_s)
        if self.hang:
            await asyncio.sleep(3600)
        if self.down:
            raise OSError("connection refused")

    async def get(self, timeout_s: float) -> StoredLease | None:
        await self._call(timeout_s)
        replay, self.replay = self.replay, None
        return replay or self.stored

    async def create(self, record: LeaseRecord, timeout_s: float) -> StoredLease:
        await self._call(timeout_s)
        if self.stored is not None:
            raise LeaseLost
        return self._write(record)

    async def replace(
        self, record: LeaseRecord, resource_version: str, timeout_s: float
    ) -> StoredLease:
        await self._call(timeout_s)
        if self.stored is None or self.stored.resource_version != resource_version:
            raise LeaseLost
        return self._write(record)

    async def aclose(self) -> None:
        return None

    def _write(self, record: LeaseRecord) -> StoredLease:
        self.version += 1
        self.stored = StoredLease(record, str(self.version))
        return self.stored


def elector(
    leases: MemoryLeases, name: str, metrics: Metrics | None = None, **overrides: float
) -> LeaseElector:
    settings = SETTINGS.model_copy(update=overrides)
    return LeaseElector(
        leases, name, settings, metrics or new_metrics(), monotonic=leases.clock, wall=lambda: NOW
    )


async def test_first_keeper_leads_the_second_stands_by() -> None:
    leases = MemoryLeases(Clock())
    a, b = elector(leases, "a"), elector(leases, "b")
    await a.attempt()
    await b.attempt()
    assert (a.may_send(), a.role()) == (True, "leader")
    assert (b.may_send(), b.role()) == (False, "standby")
    assert leases.stored is not None
    assert leases.stored.record.holder == "a"


async def test_a_silent_leader_is_replaced_only_after_the_lease_duration() -> None:
    clock = Clock()
    leases = MemoryLeases(clock)
    a, b = elector(leases, "a"), elector(leases, "b")
    await a.attempt()
    await b.attempt()  # b sees a's record now
    clock.now += SETTINGS.lease_duration_seconds - 0.1
    await b.attempt()
    assert not b.may_send()
    clock.now += 0.2
    await b.attempt()
    assert b.may_send()
    assert leases.stored is not None
    assert leases.stored.record.holder == "b"
    assert leases.stored.record.transitions == 1


async def test_the_leader_stops_sending_at_its_renew_deadline_without_its_loop() -> None:
    clock = Clock()
    leases = MemoryLeases(clock)
    a = elector(leases, "a")
    await a.attempt()
    leases.down = True
    clock.now += SETTINGS.renew_deadline_seconds - 0.01
    assert a.may_send()
    clock.now += 0.02  # no attempt ran: the fence is the clock, not the loop
    assert not a.may_send()
    # ... and before any follower may take over.
    assert a.remaining_s() > 0


async def test_the_leader_resumes_when_it_holds_the_lease_again() -> None:
    clock = Clock()
    leases = MemoryLeases(clock)
    metrics = new_metrics()
    a = elector(leases, "a", metrics)
    await a.attempt()
    a.publish()
    leases.down = True
    clock.now += SETTINGS.renew_deadline_seconds
    await a.attempt()
    a.publish()
    assert not a.may_send()
    assert metrics.registry.get_sample_value("nosana_keeper_leader") == 0
    leases.down = False
    await a.attempt()
    a.publish()
    assert a.may_send()
    sample = metrics.registry.get_sample_value
    assert sample("nosana_keeper_leader") == 1
    assert sample("nosana_keeper_leadership_transitions_total", {"change": "acquired"}) == 2
    assert sample("nosana_keeper_leadership_transitions_total", {"change": "lost"}) == 1
    assert sample("nosana_keeper_lease_renew_failures_total", {"reason": "api_error"}) == 1


async def test_the_leaders_calls_time_out_before_its_renew_deadline() -> None:
    clock = Clock()
    leases = MemoryLeases(clock)
    metrics = new_metrics()
    a = elector(leases, "a", metrics, renew_deadline_seconds=0.3, retry_period_seconds=0.1)
    await a.attempt()
    leases.hang = True
    await a.attempt()  # would hang for an hour without the budget
    assert max(leases.timeouts) <= 0.3
    sample = metrics.registry.get_sample_value
    assert sample("nosana_keeper_lease_renew_failures_total", {"reason": "timeout"}) == 1


async def test_release_hands_over_within_one_attempt() -> None:
    clock = Clock()
    leases = MemoryLeases(clock)
    metrics = new_metrics()
    a, b = elector(leases, "a", metrics), elector(leases, "b")
    await a.attempt()
    await b.attempt()
    await a.release()
    assert not a.may_send()
    await b.attempt()  # no lease duration to wait: the holder is empty
    assert b.may_send()
    sample = metrics.registry.get_sample_value
    assert sample("nosana_keeper_leadership_transitions_total", {"change": "released"}) == 1


async def test_a_follower_releases_nothing() -> None:
    leases = MemoryLeases(Clock())
    a, b = elector(leases, "a"), elector(leases, "b")
    await a.attempt()
    await b.attempt()
    await b.release()
    assert leases.stored is not None
    assert leases.stored.record.holder == "a"


async def test_a_lost_write_race_is_standby_not_an_error() -> None:
    clock = Clock()
    leases = MemoryLeases(clock)
    metrics = new_metrics()
    a, b = elector(leases, "a"), elector(leases, "b", metrics)
    await a.attempt()
    await b.attempt()
    clock.now += SETTINGS.lease_duration_seconds + 1  # b thinks a is gone...
    seen_by_b = leases.stored
    await a.attempt()  # ... but a renews between b's read and b's write
    leases.replay = seen_by_b
    await b.attempt()  # b writes with a stale resourceVersion: 409
    assert not b.may_send()
    assert leases.stored is not None
    assert leases.stored.record.holder == "a"
    assert (
        metrics.registry.get_sample_value(
            "nosana_keeper_lease_renew_failures_total", {"reason": "conflict"}
        )
        == 0
    )  # b never held it: not a renewal that failed


async def test_the_run_loop_stops_and_the_lease_is_released() -> None:
    leases = MemoryLeases(Clock())
    a = elector(leases, "a", retry_period_seconds=0.01, renew_deadline_seconds=1)
    task = asyncio.create_task(a.run())
    while not a.may_send():  # noqa: ASYNC110 - the fence is polled; it has no event
        await asyncio.sleep(0.01)
    a.stop()
    await asyncio.wait_for(task, 5)
    await a.release()
    assert leases.stored is not None
    assert leases.stored.record.holder is None


@given(
    holder=st.sampled_from([None, "me", "other"]),
    expired=st.booleans(),
    transitions=st.integers(0, 100),
)
def test_next_record_never_takes_a_live_lease_from_another(
    holder: str | None, expired: bool, transitions: int
) -> None:
    stored = LeaseRecord(holder, 15, NOW, NOW, transitions)
    wanted = next_record(stored, "me", NOW, 15, expired=expired)
    if holder == "other" and not expired:
        assert wanted is None
        return
    assert wanted is not None
    assert wanted.holder == "me"
    assert wanted.transitions == transitions + (holder != "me")


def test_namespace_comes_from_the_setting_or_the_service_account(tmp_path: Path) -> None:
    assert lease_namespace(SETTINGS.model_copy(update={"namespace": "ns"})) == "ns"
    file = tmp_path / "namespace"
    file.write_text("nosana\n")
    assert lease_namespace(SETTINGS, file) == "nosana"
    with pytest.raises(ConfigError, match="namespace"):
        lease_namespace(SETTINGS, tmp_path / "absent")


def test_timings_must_nest() -> None:
    with pytest.raises(ValueError, match="renew_deadline"):
        LeaderElectionSettings(lease_duration_seconds=5, renew_deadline_seconds=5)
    with pytest.raises(ValueError, match="retry_period"):
        LeaderElectionSettings(renew_deadline_seconds=2, retry_period_seconds=2)


async def test_an_unexpected_client_error_neither_kills_the_loop_nor_keeps_sending() -> None:
    clock = Clock()
    leases = MemoryLeases(clock)
    a = elector(leases, "a")
    await a.attempt()

    async def broken(_timeout_s: float) -> StoredLease | None:
        raise RuntimeError("a surprise from the client")

    leases.get = broken  # type: ignore[method-assign]
    await a.attempt()  # logged and counted, not raised
    clock.now += SETTINGS.renew_deadline_seconds
    assert not a.may_send()
