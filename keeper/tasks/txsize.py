"""The serialized size of a legacy transaction: counted incrementally, then measured.

Layout (no lookup tables): ``shortvec(#sigs) + 64·#sigs`` then the message:
``3`` header bytes, ``shortvec(#keys) + 32·#keys``, 32 for the blockhash,
``shortvec(#ixs)`` and per instruction ``1 (program index) + shortvec(#accounts) +
#accounts + shortvec(len(data)) + len(data)``. ``Draft`` adds instructions one at a time
with exact arithmetic; ``measure`` builds the real solders Transaction (placeholder
blockhash, empty signatures) and counts its bytes, the authority on every batch. A v0
message (no lookup tables) is 2 bytes longer: its version prefix and an empty table list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from solders.hash import Hash
from solders.message import Message, MessageV0
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from keeper.program.limits import TxVersion

if TYPE_CHECKING:
    from collections.abc import Sequence

    from solders.instruction import Instruction
    from solders.pubkey import Pubkey

SIGNATURE_BYTES: Final = 64
KEY_BYTES: Final = 32
_HEADER_BYTES: Final = 3
_BLOCKHASH_BYTES: Final = 32
_SHORTVEC_ONE_BYTE: Final = 0x80
_SHORTVEC_TWO_BYTES: Final = 0x4000
V0_EXTRA_BYTES: Final = 2  # version prefix + an empty address-table-lookup list


def shortvec_len(value: int) -> int:
    """Bytes of Solana's compact-u16 length prefix."""
    if value < _SHORTVEC_ONE_BYTE:
        return 1
    return 2 if value < _SHORTVEC_TWO_BYTES else 3


def instruction_bytes(ix: Instruction) -> int:
    accounts = len(ix.accounts)
    data = len(ix.data)
    return 1 + shortvec_len(accounts) + accounts + shortvec_len(data) + data


@dataclass(slots=True)
class Draft:
    """A transaction being filled: its distinct keys, signers and instruction bytes."""

    fee_payer: Pubkey
    version: TxVersion = "legacy"
    keys: set[Pubkey] = field(default_factory=set)
    signers: set[Pubkey] = field(default_factory=set)
    instructions: list[Instruction] = field(default_factory=list)
    ix_bytes: int = 0

    def __post_init__(self) -> None:
        self.keys.add(self.fee_payer)
        self.signers.add(self.fee_payer)

    def size(self) -> int:
        return self.size_with(())

    def size_with(self, extra: Sequence[Instruction]) -> int:
        """The serialized size if ``extra`` were added; nothing changes."""
        new_keys: set[Pubkey] = set()
        new_signers: set[Pubkey] = set()
        ix_bytes = self.ix_bytes
        for ix in extra:
            _collect(ix, new_keys, new_signers)
            ix_bytes += instruction_bytes(ix)
        size = _total(
            len(self.signers) + len(new_signers - self.signers),
            len(self.keys) + len(new_keys - self.keys),
            len(self.instructions) + len(extra),
            ix_bytes,
        )
        return size + (V0_EXTRA_BYTES if self.version == "v0" else 0)

    def add(self, ix: Instruction) -> None:
        _collect(ix, self.keys, self.signers)
        self.ix_bytes += instruction_bytes(ix)
        self.instructions.append(ix)


def _collect(ix: Instruction, keys: set[Pubkey], signers: set[Pubkey]) -> None:
    keys.add(ix.program_id)
    for meta in ix.accounts:
        keys.add(meta.pubkey)
        if meta.is_signer:
            signers.add(meta.pubkey)


def _total(signatures: int, keys: int, instructions: int, ix_bytes: int) -> int:
    return (
        shortvec_len(signatures)
        + SIGNATURE_BYTES * signatures
        + _HEADER_BYTES
        + shortvec_len(keys)
        + KEY_BYTES * keys
        + _BLOCKHASH_BYTES
        + shortvec_len(instructions)
        + ix_bytes
    )


def measure(
    instructions: Sequence[Instruction], fee_payer: Pubkey, version: TxVersion = "legacy"
) -> tuple[int, int]:
    """(serialized bytes, signatures) of the real transaction, placeholder blockhash."""
    message: Message | MessageV0
    if version == "legacy":
        message = Message.new_with_blockhash(list(instructions), fee_payer, Hash.default())
    else:
        message = MessageV0.try_compile(fee_payer, list(instructions), [], Hash.default())
    signatures = message.header.num_required_signatures
    transaction = VersionedTransaction.populate(message, [Signature.default()] * signatures)
    return len(bytes(transaction)), signatures
