"""Building, measuring and signing one transaction; the fee arithmetic of Solana."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Final

from solders.hash import Hash
from solders.message import Message, MessageV0
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from keeper.program.instructions import compute_unit_limit, compute_unit_price
from keeper.program.limits import (
    LAMPORTS_PER_SIGNATURE,
    MAX_COMPUTE_UNITS,
    MICRO_LAMPORTS_PER_LAMPORT,
    TxVersion,
    fee_lamports,
)

__all__ = [
    "MAX_COMPUTE_UNITS",
    "AnyMessage",
    "TxVersion",
    "compile_message",
    "fee_lamports",
    "highest_price_within",
    "sign",
    "signer_keys",
    "unit_limit_for",
    "unsigned_bytes",
]

if TYPE_CHECKING:
    from collections.abc import Sequence

    from solders.instruction import Instruction
    from solders.keypair import Keypair
    from solders.pubkey import Pubkey

# The sender puts SetComputeUnitLimit and SetComputeUnitPrice first: instruction i of the
# batch is instruction i + BUDGET_PREFIX of the transaction.
BUDGET_PREFIX: Final = 2

AnyMessage = Message | MessageV0


def compile_message(  # noqa: PLR0913 - a message is all of these
    batch: Sequence[Instruction],
    *,
    payer: Pubkey,
    unit_limit: int,
    unit_price: int,
    blockhash: Hash,
    version: TxVersion,
) -> AnyMessage:
    instructions = [compute_unit_limit(unit_limit), compute_unit_price(unit_price), *batch]
    if version == "legacy":
        return Message.new_with_blockhash(instructions, payer, blockhash)
    return MessageV0.try_compile(payer, instructions, [], blockhash)


def signer_keys(message: AnyMessage) -> list[Pubkey]:
    return list(message.account_keys[: message.header.num_required_signatures])


def unsigned_bytes(message: AnyMessage) -> bytes:
    """Wire bytes with empty signatures: for simulation (sigVerify off) and measuring."""
    signatures = [Signature.default()] * message.header.num_required_signatures
    return bytes(VersionedTransaction.populate(message, signatures))


def sign(message: AnyMessage, keypairs: Sequence[Keypair]) -> tuple[bytes, Signature]:
    """Signed wire bytes and the transaction's signature (the fee payer's)."""
    by_key = {keypair.pubkey(): keypair for keypair in keypairs}
    ordered = [by_key[key] for key in signer_keys(message)]
    transaction = VersionedTransaction(message, ordered)
    return bytes(transaction), transaction.signatures[0]


def highest_price_within(max_fee: int, signatures: int, unit_limit: int) -> int | None:
    """The highest unit price keeping the fee within ``max_fee``; None if even 0 does not."""
    room = max_fee - LAMPORTS_PER_SIGNATURE * signatures
    if room < 0:
        return None
    return room * MICRO_LAMPORTS_PER_LAMPORT // max(unit_limit, 1)


def unit_limit_for(units: int | None, margin: float) -> int:
    """Simulated units plus the margin, capped at the transaction maximum."""
    if units is None:
        return MAX_COMPUTE_UNITS
    return min(MAX_COMPUTE_UNITS, max(1, math.ceil(units * margin)))
