"""AlreadyProcessed is recognised however the node spells it."""

from __future__ import annotations

from keeper.chain.broadcast import is_already_processed
from keeper.chain.rpc import RpcCallError


def test_already_processed_by_data() -> None:
    error = RpcCallError(
        "Transaction simulation failed", code=-32002, data={"err": "AlreadyProcessed"}
    )
    assert is_already_processed(error)


def test_already_processed_by_message() -> None:
    error = RpcCallError("This transaction has already been processed (-32002)", code=-32002)
    assert is_already_processed(error)


def test_other_errors_are_not() -> None:
    error = RpcCallError("Blockhash not found", code=-32002, data={"err": "BlockhashNotFound"})
    assert not is_already_processed(error)
