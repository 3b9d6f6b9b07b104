"""Compute budget instructions and transaction fees, as a cluster computes them."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from solders.pubkey import Pubkey

from keeper.localnet.tx_errors import TransactionRejected, instruction_error

if TYPE_CHECKING:
    from collections.abc import Sequence

COMPUTE_BUDGET_PROGRAM: Final = Pubkey.from_string("ComputeBudget111111111111111111111111111111")
MAX_COMPUTE_UNIT_LIMIT: Final = 1_400_000
DEFAULT_INSTRUCTION_COMPUTE_UNIT_LIMIT: Final = 200_000
LAMPORTS_PER_SIGNATURE: Final = 5_000
MICRO_LAMPORTS_PER_LAMPORT: Final = 1_000_000
# What a builtin program (compute budget, system) charges per instruction.
BUILTIN_INSTRUCTION_UNITS: Final = 150

_REQUEST_HEAP_FRAME: Final = 1
_SET_COMPUTE_UNIT_LIMIT: Final = 2
_SET_COMPUTE_UNIT_PRICE: Final = 3
_SET_LOADED_ACCOUNTS_DATA_SIZE_LIMIT: Final = 4
_U32_ARGUMENT: Final = struct.Struct("<BI")
_U64_ARGUMENT: Final = struct.Struct("<BQ")
_MIN_HEAP_FRAME: Final = 32 * 1024
_MAX_HEAP_FRAME: Final = 256 * 1024


@dataclass(frozen=True, slots=True)
class ComputeBudget:
    unit_limit: int
    unit_price_micro_lamports: int

    @property
    def priority_fee(self) -> int:
        """ceil(price x limit / 1e6): the requested limit is paid for, not the units used."""
        return -(-self.unit_price_micro_lamports * self.unit_limit // MICRO_LAMPORTS_PER_LAMPORT)

    def fee(self, signatures: int) -> int:
        return LAMPORTS_PER_SIGNATURE * signatures + self.priority_fee


def parse_compute_budget(instructions: Sequence[tuple[Pubkey, bytes]]) -> ComputeBudget:
    """The budget requested by ``(program_id, data)`` instructions.

    Raises ``TransactionRejected`` for malformed or repeated compute budget instructions,
    which a cluster rejects before execution.
    """
    limit: int | None = None
    price: int | None = None
    seen: set[int] = set()
    other_instructions = 0
    for index, (program_id, data) in enumerate(instructions):
        if program_id != COMPUTE_BUDGET_PROGRAM:
            other_instructions += 1
            continue
        tag = data[0] if data else -1
        if tag in seen:
            raise TransactionRejected({"DuplicateInstruction": index})
        seen.add(tag)
        if tag == _SET_COMPUTE_UNIT_LIMIT and len(data) == _U32_ARGUMENT.size:
            limit = _U32_ARGUMENT.unpack(data)[1]
        elif tag == _SET_COMPUTE_UNIT_PRICE and len(data) == _U64_ARGUMENT.size:
            price = _U64_ARGUMENT.unpack(data)[1]
        elif not _is_accepted_no_op(tag, data):
            raise TransactionRejected(instruction_error(index, "InvalidInstructionData"))
    if limit is None:
        limit = DEFAULT_INSTRUCTION_COMPUTE_UNIT_LIMIT * other_instructions
    return ComputeBudget(
        unit_limit=min(limit, MAX_COMPUTE_UNIT_LIMIT), unit_price_micro_lamports=price or 0
    )


def _is_accepted_no_op(tag: int, data: bytes) -> bool:
    """Valid instructions that change nothing this chain models (heap, data size)."""
    if len(data) != _U32_ARGUMENT.size:
        return False
    value: int = _U32_ARGUMENT.unpack(data)[1]
    if tag == _REQUEST_HEAP_FRAME:
        return _MIN_HEAP_FRAME <= value <= _MAX_HEAP_FRAME and value % 1024 == 0
    return tag == _SET_LOADED_ACCOUNTS_DATA_SIZE_LIMIT
