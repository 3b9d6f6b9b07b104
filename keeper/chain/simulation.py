"""Simulation, and the drop-and-resimulate loop that isolates failing instructions."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from keeper.chain.outcome import Fault
from keeper.chain.transaction import BUDGET_PREFIX
from keeper.chain.txerror import parse_tx_error
from keeper.errors import RpcResponseError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from solders.instruction import Instruction

    from keeper.chain.endpoints import Rpc
    from keeper.chain.scan import Commitment

log = structlog.get_logger("keeper.chain.simulation")


@dataclass(frozen=True, slots=True)
class Simulation:
    err: object | None
    logs: tuple[str, ...]
    units: int | None


@dataclass(slots=True)
class Survivors:
    """What the loop leaves: batch indices that simulate cleanly, and why the rest went."""

    live: list[int]
    dropped: dict[int, Fault] = field(default_factory=dict)
    units: int | None = None
    runs: int = 0
    error: str | None = None  # the transaction as a whole failed: nothing to drop


async def simulate(rpc: Rpc, wire: bytes, commitment: Commitment) -> Simulation:
    config = {
        "encoding": "base64",
        "sigVerify": False,
        "replaceRecentBlockhash": True,
        "commitment": commitment,
    }
    result = await rpc.call("simulateTransaction", [base64.b64encode(wire).decode(), config])
    value: Any = result.get("value") if isinstance(result, dict) else None
    if not isinstance(value, dict):
        raise RpcResponseError("simulateTransaction: a result without a value")
    logs = value.get("logs") or ()
    units = value.get("unitsConsumed")
    return Simulation(
        err=value.get("err"),
        logs=tuple(str(line) for line in logs),
        units=units if isinstance(units, int) else None,
    )


async def simulate_until_clean(
    rpc: Rpc,
    batch: Sequence[Instruction],
    *,
    wire_for: Callable[[Sequence[Instruction]], bytes],
    commitment: Commitment,
) -> Survivors:
    """Simulate ``batch``; drop each instruction that fails and simulate the rest again.

    Bounded: every failing round removes one instruction, so at most len(batch) + 1 runs.
    ``wire_for`` builds the unsigned transaction (with the compute-budget prefix).
    """
    survivors = Survivors(live=list(range(len(batch))))
    while survivors.live:
        survivors.runs += 1
        result = await simulate(rpc, wire_for([batch[i] for i in survivors.live]), commitment)
        if result.err is None:
            survivors.units = result.units
            return survivors
        fault = parse_tx_error(result.err)
        position = None if fault.instruction is None else fault.instruction - BUDGET_PREFIX
        if position is None or not 0 <= position < len(survivors.live):
            survivors.error = f"simulation failed: {'/'.join(fault.names(result.logs))}"
            return survivors
        index = survivors.live.pop(position)
        dropped = Fault(index=index, code=fault.code, names=fault.names(result.logs))
        survivors.dropped[index] = dropped
        log.info(
            "instruction dropped after simulation",
            index=index,
            code=fault.code,
            error="/".join(dropped.names),
            already_closed=dropped.already_closed,
        )
    return survivors
