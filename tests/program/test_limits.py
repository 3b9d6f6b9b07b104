"""The protocol's fee arithmetic, shared by packing and sending."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from keeper.program.limits import MAX_COMPUTE_UNITS, fee_lamports


def test_fee_lamports() -> None:
    assert fee_lamports(1, 0, 200_000) == 5_000
    assert fee_lamports(2, 1_000, 200_000) == 10_000 + 200
    assert fee_lamports(1, 1, 1) == 5_001  # the priority fee rounds up
    assert fee_lamports(7, 3, 1_000_000) == 35_000 + 3


@given(st.integers(1, 4), st.integers(0, 10**12), st.integers(1, MAX_COMPUTE_UNITS))
def test_priority_fee_is_the_exact_ceiling(signatures: int, price: int, limit: int) -> None:
    priority = fee_lamports(signatures, price, limit) - 5_000 * signatures
    assert priority * 1_000_000 >= price * limit > (priority - 1) * 1_000_000
