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
| localnet_getStats | - | the node's work: calls, bytes, accounts visited, notifications |
| localnet_resetStats | - | localnet_getStats' answer, every count zero |
| localnet_postJob | [market, {payer?, project?, timeout?, price?}?] | {job, slot} |
| localnet_startJob | [job, {node?, payer?}?] | {run, slot} |
| localnet_finishJob | [job] | {job, run (closed, or null), timeEnd, slot} |
| localnet_stopJob | [job] | {job, run (closed), slot} |
| localnet_closeMarket | [market] | {market, slot} |

The lifecycle methods (``keeper.localnet.lifecycle``) write the accounts a real
transaction would; subscribers hear of them when the slot (``slot`` in the answer) ends.
A step that does not fit the account's state answers -32602 with the reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from keeper.localnet.faults import FaultConfigError, fault_config
from keeper.localnet.lifecycle import JobLifecycle, LifecycleError
from keeper.localnet.rpc_params import invalid_params, pubkey

if TYPE_CHECKING:
    from collections.abc import Callable

    from solders.pubkey import Pubkey

    from keeper.localnet.lifecycle import Ended
    from keeper.localnet.node import Node
    from keeper.localnet.rpc_params import Config, Params

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


def get_stats(node: Node, _params: Params) -> object:
    return node.stats.snapshot()


def reset_stats(node: Node, _params: Params) -> object:
    node.stats.reset()
    return node.stats.snapshot()


# -- a job's life ---------------------------------------------------------------------


def _lifecycle(node: Node) -> JobLifecycle:
    if node.lifecycle is None:
        raise invalid_params("Invalid params: this chain has no jobs program")
    return node.lifecycle


def _optional_key(config: Config, name: str) -> Pubkey | None:
    value = config.get(name)
    return None if value is None else pubkey(value)


def _optional_int(config: Config, name: str) -> int | None:
    value = config.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise invalid_params(f"Invalid params: {name} must be a non-negative integer")
    return value


def _step(node: Node, step: Callable[[JobLifecycle], dict[str, object]]) -> object:
    try:
        answer = step(_lifecycle(node))
    except LifecycleError as error:
        raise invalid_params(f"Invalid params: {error}") from error
    return {**answer, "slot": node.ledger.clock.slot}


def _ended(ended: Ended) -> dict[str, object]:
    return {
        "job": str(ended.job),
        "run": None if ended.run is None else str(ended.run),
        "timeEnd": ended.unix_timestamp,
    }


def post_job(node: Node, params: Params) -> object:
    market = pubkey(params.required(0, "market"))
    config = params.config(1)
    return _step(
        node,
        lambda life: {
            "job": str(
                life.post_job(
                    market=market,
                    payer=_optional_key(config, "payer"),
                    project=_optional_key(config, "project"),
                    timeout=_optional_int(config, "timeout"),
                    price=_optional_int(config, "price"),
                )
            )
        },
    )


def start_job(node: Node, params: Params) -> object:
    job = pubkey(params.required(0, "job"))
    config = params.config(1)
    node_key, payer = _optional_key(config, "node"), _optional_key(config, "payer")
    return _step(node, lambda life: {"run": str(life.start_job(job, node=node_key, payer=payer))})


def finish_job(node: Node, params: Params) -> object:
    job = pubkey(params.required(0, "job"))
    return _step(node, lambda life: _ended(life.finish_job(job)))


def stop_job(node: Node, params: Params) -> object:
    job = pubkey(params.required(0, "job"))
    return _step(node, lambda life: _ended(life.stop_job(job)))


def close_market(node: Node, params: Params) -> object:
    market = pubkey(params.required(0, "market"))

    def close(life: JobLifecycle) -> dict[str, object]:
        life.close_market(market)
        return {"market": str(market)}

    return _step(node, close)


CONTROL_METHODS: Final[dict[str, Callable[[Node, Params], object]]] = {
    "localnet_getClock": get_clock,
    "localnet_setClock": set_clock,
    "localnet_skewClock": skew_clock,
    "localnet_advanceSlots": advance_slots,
    "localnet_setFaults": set_faults,
    "localnet_clearFaults": clear_faults,
    "localnet_getFaults": get_faults,
    "localnet_setPrioritizationFees": set_prioritization_fees,
    "localnet_getStats": get_stats,
    "localnet_resetStats": reset_stats,
    "localnet_postJob": post_job,
    "localnet_startJob": start_job,
    "localnet_finishJob": finish_job,
    "localnet_stopJob": stop_job,
    "localnet_closeMarket": close_market,
}
