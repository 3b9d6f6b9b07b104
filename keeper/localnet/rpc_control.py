"""``localnet_*`` control methods for tests and operators (never subject to faults).

| method | params | result |
|---|---|---|
| localnet_getClock | - | {slot, blockHeight, unixTimestamp, skewSeconds} |
| localnet_setClock | [unix_timestamp] | the new unix_timestamp |
| localnet_skewClock | [seconds] (may be negative) | the new unix_timestamp |
| localnet_advanceSlots | [n] | the new slot |
| localnet_setFaults | [{switch: value, ...}]; others keep theirs | localnet_getFaults' answer |
| localnet_clearFaults | - | localnet_getFaults' answer, every switch off |
| localnet_getFaults | - | switches in force (``*_next`` = what is left) + ``injected`` counts |
| localnet_setPrioritizationFees | [[micro-lamports, ...]] | the list (oldest slot first) |
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from keeper.localnet.faults import FaultConfigError, fault_config
from keeper.localnet.rpc_params import invalid_params

if TYPE_CHECKING:
    from collections.abc import Callable

    from keeper.localnet.node import Node
    from keeper.localnet.rpc_params import Params

CONTROL_PREFIX: Final = "localnet_"
MAX_PRIORITIZATION_FEES: Final = 150


def _signed(params: Params, index: int, what: str) -> int:
    value = params.required(index, what)
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_params(f"Invalid params: {what} must be an integer")
    return value


def get_clock(node: Node, _params: Params) -> object:
    clock = node.ledger.clock
    return {
        "slot": clock.slot,
        "blockHeight": clock.block_height,
        "unixTimestamp": clock.unix_timestamp,
        "skewSeconds": clock.skew_seconds,
    }


def set_clock(node: Node, params: Params) -> object:
    node.ledger.clock.set_unix_timestamp(_signed(params, 0, "unix_timestamp"))
    return node.ledger.clock.unix_timestamp


def skew_clock(node: Node, params: Params) -> object:
    return node.ledger.clock.skew(_signed(params, 0, "seconds"))


def advance_slots(node: Node, params: Params) -> object:
    return node.ledger.clock.advance(params.integer(0, "slots"))


def set_faults(node: Node, params: Params) -> object:
    switches = params.config(0)
    try:
        node.faults.apply(fault_config(switches.as_dict(), node.faults.current()))
    except FaultConfigError as error:
        raise invalid_params(f"Invalid params: {error}") from error
    return node.faults.snapshot()


def clear_faults(node: Node, _params: Params) -> object:
    node.faults.clear()
    return node.faults.snapshot()


def get_faults(node: Node, _params: Params) -> object:
    return node.faults.snapshot()


def set_prioritization_fees(node: Node, params: Params) -> object:
    fees = params.array(0, "fees", max_items=MAX_PRIORITIZATION_FEES)
    if not all(isinstance(fee, int) and not isinstance(fee, bool) and fee >= 0 for fee in fees):
        raise invalid_params("Invalid params: fees must be non-negative integers")
    node.prioritization_fees = [int(fee) for fee in fees]  # type: ignore[call-overload]
    return node.prioritization_fees


CONTROL_METHODS: Final[dict[str, Callable[[Node, Params], object]]] = {
    "localnet_getClock": get_clock,
    "localnet_setClock": set_clock,
    "localnet_skewClock": skew_clock,
    "localnet_advanceSlots": advance_slots,
    "localnet_setFaults": set_faults,
    "localnet_clearFaults": clear_faults,
    "localnet_getFaults": get_faults,
    "localnet_setPrioritizationFees": set_prioritization_fees,
}
