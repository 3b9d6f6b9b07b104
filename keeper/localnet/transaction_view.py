"""Wire decoding of transactions and the facts the runtime needs about their message."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from solders.message import Message, MessageV0
from solders.transaction import SanitizeError, VersionedTransaction

from keeper.localnet.compute_budget import COMPUTE_BUDGET_PROGRAM
from keeper.localnet.ledger import CLOCK_SYSVAR
from keeper.localnet.system_program import SYSTEM_PROGRAM
from keeper.localnet.tx_errors import (
    ACCOUNT_LOADED_TWICE,
    ADDRESS_LOOKUP_TABLE_NOT_FOUND,
    TransactionRejected,
)

if TYPE_CHECKING:
    from solders.hash import Hash
    from solders.pubkey import Pubkey
    from solders.signature import Signature

# IPv6 MTU minus headers: the most a transaction may occupy on the wire.
PACKET_DATA_SIZE: Final = 1_232
# Accounts the runtime never lets an instruction write (they are demoted to read-only).
_ALWAYS_READONLY: Final = frozenset({CLOCK_SYSVAR, SYSTEM_PROGRAM, COMPUTE_BUDGET_PROGRAM})


class MalformedTransactionError(ValueError):
    """The bytes are not a transaction a cluster would accept for processing."""


@dataclass(frozen=True, slots=True)
class CompiledIx:
    program_id: Pubkey
    accounts: tuple[int, ...]  # indices into the message's account keys
    data: bytes


@dataclass(frozen=True, slots=True)
class TransactionView:
    transaction: VersionedTransaction
    account_keys: tuple[Pubkey, ...]
    is_signer: tuple[bool, ...]
    is_writable: tuple[bool, ...]
    instructions: tuple[CompiledIx, ...]
    recent_blockhash: Hash

    @property
    def signature(self) -> Signature:
        return self.transaction.signatures[0]

    @property
    def fee_payer(self) -> Pubkey:
        return self.account_keys[0]

    @property
    def num_signatures(self) -> int:
        return len(self.transaction.signatures)

    @property
    def is_legacy(self) -> bool:
        return isinstance(self.transaction.message, Message)


def decode_transaction(raw: bytes) -> VersionedTransaction:
    """Deserialize and sanitize wire bytes (legacy or v0); size limit included."""
    if len(raw) > PACKET_DATA_SIZE:
        raise MalformedTransactionError(
            f"transaction too large: {len(raw)} bytes (max: {PACKET_DATA_SIZE})"
        )
    try:
        transaction = VersionedTransaction.from_bytes(raw)
    except ValueError as error:
        raise MalformedTransactionError(f"failed to deserialize transaction: {error}") from error
    sanitize(transaction)
    return transaction


def sanitize(transaction: VersionedTransaction) -> None:
    message = transaction.message
    try:
        transaction.sanitize()
    except SanitizeError as error:
        raise MalformedTransactionError(
            "invalid transaction: Transaction failed to sanitize accounts offsets correctly"
        ) from error
    if len(transaction.signatures) != message.header.num_required_signatures:
        raise MalformedTransactionError(
            "invalid transaction: Transaction failed to sanitize accounts offsets correctly"
        )


def view_transaction(transaction: VersionedTransaction) -> TransactionView:
    """Account keys and flags as the runtime sees them.

    Raises ``TransactionRejected`` where a cluster would refuse to load the transaction:
    address lookup tables (this chain has none) and a key listed twice.
    """
    message = transaction.message
    if isinstance(message, MessageV0) and message.address_table_lookups:
        raise TransactionRejected(ADDRESS_LOOKUP_TABLE_NOT_FOUND)
    keys = tuple(message.account_keys)
    if len(set(keys)) != len(keys):
        raise TransactionRejected(ACCOUNT_LOADED_TWICE)
    header = message.header
    signers = header.num_required_signatures
    writable_signers = signers - header.num_readonly_signed_accounts
    writable_end = len(keys) - header.num_readonly_unsigned_accounts
    invoked = {keys[ix.program_id_index] for ix in message.instructions}

    def writable(index: int) -> bool:
        if keys[index] in invoked or keys[index] in _ALWAYS_READONLY:
            return False
        return index < writable_signers or signers <= index < writable_end

    return TransactionView(
        transaction=transaction,
        account_keys=keys,
        is_signer=tuple(index < signers for index in range(len(keys))),
        is_writable=tuple(writable(index) for index in range(len(keys))),
        instructions=tuple(
            CompiledIx(keys[ix.program_id_index], tuple(ix.accounts), bytes(ix.data))
            for ix in message.instructions
        ),
        recent_blockhash=message.recent_blockhash,
    )
