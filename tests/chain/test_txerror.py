"""Transaction errors as the RPC spells them."""

from __future__ import annotations

import pytest

from keeper.chain.txerror import TxFault, parse_tx_error


@pytest.mark.parametrize(
    ("err", "fault"),
    [
        ({"InstructionError": [3, {"Custom": 3012}]}, TxFault(3, 3012, "Custom")),
        ({"InstructionError": [0, "InvalidAccountData"]}, TxFault(0, None, "InvalidAccountData")),
        ({"InstructionError": [1, {"BorshIoError": "x"}]}, TxFault(1, None, "BorshIoError")),
        ("AlreadyProcessed", TxFault(None, None, "AlreadyProcessed")),
        (
            {"InsufficientFundsForRent": {"account_index": 2}},
            TxFault(None, None, "InsufficientFundsForRent"),
        ),
        ({"InstructionError": "garbled"}, TxFault(None, None, "InstructionError")),
    ],
)
def test_parse(err: object, fault: TxFault) -> None:
    assert parse_tx_error(err) == fault


def test_names_prefer_the_program_log() -> None:
    fault = TxFault(2, 6005, "Custom")
    logs = ["Program log: AnchorError occurred. Error Code: JobNotExpired. Error Number: 6005."]
    assert fault.names(logs) == ("JobNotExpired",)
    # without a log the code is ambiguous: every candidate
    assert fault.names() == ("JobNotExpired", "InvalidTokenAccount", "NotUnstaked")


def test_names_of_anchor_and_builtin_errors() -> None:
    assert TxFault(0, 3012, "Custom").names() == ("AccountNotInitialized",)
    assert TxFault(0, 3012, "Custom").already_closed
    assert TxFault(0, None, "InvalidAccountData").names() == ("InvalidAccountData",)
    assert TxFault(0, 99, "Custom").names() == ("Custom(99)",)
