"""The clock guard's record of each chain-time read: gauges, readiness detail, resume."""

from __future__ import annotations

from keeper.service.metrics import new_metrics
from keeper.service.trust import ClockGuard

WALL = 1_800_000_000.0


def _guard() -> ClockGuard:
    return ClockGuard(max_lead_s=120, metrics=new_metrics(), wall=lambda: WALL)


def _sample(guard: ClockGuard, name: str, **labels: str) -> float | None:
    return guard.metrics.registry.get_sample_value(name, labels)


def test_a_chain_far_ahead_pauses_and_says_so() -> None:
    guard = _guard()
    assert guard.observe(int(WALL) + 30 * 86_400)
    assert _sample(guard, "nosana_keeper_chain_clock_lead_seconds") == 30 * 86_400
    paused = "nosana_keeper_time_based_actions_paused"
    assert _sample(guard, paused, cause="clock_ahead") == 1
    problem = guard.problem()
    assert problem is not None
    assert "2592000s" in problem
    assert "chain.max_clock_lead_seconds 120" in problem


def test_within_the_limit_or_behind_nothing_pauses() -> None:
    guard = _guard()
    for chain in (int(WALL) + 120, int(WALL) - 300 * 86_400):
        assert not guard.observe(chain)
        assert guard.problem() is None
        assert _sample(guard, "nosana_keeper_time_based_actions_paused", cause="clock_ahead") == 0


def test_an_honest_read_after_a_lie_resumes() -> None:
    guard = _guard()
    assert guard.observe(int(WALL) + 121)
    assert not guard.observe(int(WALL))
    assert guard.problem() is None
    assert _sample(guard, "nosana_keeper_time_based_actions_paused", cause="clock_ahead") == 0
