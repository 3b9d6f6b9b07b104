"""Fee policy: price choice with a loud fallback, fee arithmetic, and spending guards."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keeper.tasks.budget import (
    FeeBudget,
    PriceChoice,
    PriceSource,
    above_balance_floor,
    choose_unit_price,
    percentile_of,
)


def test_fee_source_failure_falls_back_to_the_floor_and_says_so() -> None:
    choice = choose_unit_price(None, percentile=75, floor=1_000, cap=50_000)
    assert choice == PriceChoice(1_000, PriceSource.FLOOR_FALLBACK)


def test_zero_only_when_the_floor_is_configured_zero_and_still_marked() -> None:
    choice = choose_unit_price(None, percentile=75, floor=0, cap=50_000)
    assert choice == PriceChoice(0, PriceSource.FLOOR_FALLBACK)


def test_percentile_within_floor_and_cap() -> None:
    fees = [0, 10, 2_000, 3_000, 100_000]
    assert choose_unit_price(fees, percentile=60, floor=1, cap=50_000) == PriceChoice(
        2_000, PriceSource.RPC
    )
    assert choose_unit_price(fees, percentile=100, floor=1, cap=50_000).micro_lamports == 50_000
    assert choose_unit_price(fees, percentile=1, floor=500, cap=50_000).micro_lamports == 500


def test_no_recent_fees_is_an_answer_not_a_failure() -> None:
    assert choose_unit_price([], percentile=75, floor=7, cap=9) == PriceChoice(7, PriceSource.RPC)


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="floor"):
        choose_unit_price([1], percentile=50, floor=10, cap=5)
    with pytest.raises(ValueError, match="percentile"):
        percentile_of([1], 0)
    with pytest.raises(ValueError, match="no values"):
        percentile_of([], 50)


@given(st.lists(st.integers(0, 10**9), min_size=1), st.floats(0.01, 100))
def test_percentile_is_a_member_and_monotonic(values, percentile) -> None:
    value = percentile_of(values, percentile)
    assert value in values
    assert value <= percentile_of(values, 100) == max(values)


@given(st.lists(st.integers(0, 10**9)) | st.none(), st.integers(0, 10**6), st.integers(0, 10**6))
def test_choice_always_within_bounds(fees, floor, extra) -> None:
    choice = choose_unit_price(fees, percentile=75, floor=floor, cap=floor + extra)
    assert floor <= choice.micro_lamports <= floor + extra
    assert (choice.source is PriceSource.FLOOR_FALLBACK) == (fees is None)


def test_balance_floor_boundaries() -> None:
    assert above_balance_floor(1_000_000, 900_000, 100_000)
    assert not above_balance_floor(1_000_000, 900_001, 100_000)


def test_fee_budget_rolls_over_the_window() -> None:
    budget = FeeBudget(limit=10_000, window_seconds=3_600)
    budget.spend(0.0, 6_000)
    assert budget.allows(10.0, 4_000)
    assert not budget.allows(10.0, 4_001)
    budget.spend(1_800.0, 4_000)
    assert budget.spent(3_599.0) == 10_000
    assert budget.spent(3_600.0) == 4_000  # the first spend left the window
    assert budget.allows(3_600.0, 6_000)
    assert budget.spent(5_400.0) == 0


def test_fee_budget_refuses_bad_input() -> None:
    budget = FeeBudget(limit=10)
    budget.spend(5.0, 1)
    with pytest.raises(ValueError, match="backwards"):
        budget.spend(4.0, 1)
    with pytest.raises(ValueError, match="cannot spend"):
        budget.spend(6.0, -1)
    with pytest.raises(ValueError, match="window"):
        FeeBudget(limit=10, window_seconds=0)


def test_a_reservation_counts_against_the_budget_until_released() -> None:
    budget = FeeBudget(limit=10_000)
    assert budget.reserve(0.0, 6_000)
    assert budget.held == 6_000
    assert not budget.allows(0.0, 4_001)
    assert not budget.reserve(0.0, 6_000)  # a second send in flight cannot overrun the limit
    assert budget.held == 6_000  # a refused reservation holds nothing
    budget.spend(1.0, 5_100)  # what the first send actually paid...
    budget.release(6_000)  # ...then its worst case is given back
    assert budget.held == 0
    assert budget.allows(1.0, 4_900)
    assert not budget.allows(1.0, 4_901)


def test_released_total_says_what_finished_between_two_readings() -> None:
    budget = FeeBudget(limit=100_000)
    budget.reserve(0.0, 6_000)
    budget.reserve(0.0, 7_000)
    before = budget.released_total
    budget.release(6_000)
    assert budget.released_total - before == 6_000
    assert budget.held == 7_000
    budget.release(7_000)
    assert budget.released_total == 13_000


def test_fee_budget_refuses_bad_reservations() -> None:
    budget = FeeBudget(limit=10)
    with pytest.raises(ValueError, match="cannot reserve"):
        budget.reserve(0.0, -1)
    assert budget.reserve(0.0, 4)
    with pytest.raises(ValueError, match="cannot release"):
        budget.release(5)
    with pytest.raises(ValueError, match="cannot release"):
        budget.release(-1)


@given(
    st.lists(st.tuples(st.integers(0, 20_000), st.integers(0, 20_000)), max_size=20),
    st.integers(0, 100_000),
)
def test_sends_in_flight_together_never_spend_past_the_limit(sends, limit) -> None:
    """Every send reserves its cap before any settles; each pays at most its cap."""
    budget = FeeBudget(limit=limit)
    admitted = [(cap, paid) for cap, paid in sends if budget.reserve(0.0, cap)]
    for cap, paid in admitted:
        budget.spend(1.0, min(paid, cap))
        budget.release(cap)
    assert budget.held == 0
    assert budget.spent(1.0) <= limit
