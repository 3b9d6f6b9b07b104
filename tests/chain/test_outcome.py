"""Only landed transactions pay; 3012 drops are skips."""

from __future__ import annotations

import pytest

from keeper.chain.outcome import BatchResult, Fault, SendOutcome


@pytest.mark.parametrize("outcome", list(SendOutcome))
def test_only_landed_transactions_pay(outcome: SendOutcome) -> None:
    result = BatchResult(outcome, fee_lamports=7_000)
    expected = 7_000 if outcome in {SendOutcome.CONFIRMED, SendOutcome.FAILED} else 0
    assert result.fee_paid_lamports == expected


def test_already_closed_drops() -> None:
    result = BatchResult(
        SendOutcome.CONFIRMED,
        dropped={
            0: Fault(0, 3012, ("AccountNotInitialized",)),
            2: Fault(2, 6005, ("JobNotExpired",)),
        },
    )
    assert result.already_closed == (0,)
