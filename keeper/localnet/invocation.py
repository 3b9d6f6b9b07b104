"""One call of a program instruction: its accounts, its compute meter, and closing accounts.

``share_accounts`` gives every ``AccountRef`` a working ``Account`` (a zero-lamport system
account stands for "nothing here") and makes refs to the same key share one object, as the
runtime's borrowed accounts do: a program that debits ``payer`` also debits ``authority``
when both are the same key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from keeper.localnet import anchor_checks
from keeper.localnet.model import Account, AccountRef
from keeper.localnet.system_cpi import working_account
from keeper.program.ids import SYSTEM_PROGRAM

if TYPE_CHECKING:
    from collections.abc import Sequence

    from solders.pubkey import Pubkey

    from keeper.localnet.model import InstructionContext

# Rough costs used to charge a *failed* call for the work done before it failed (a success
# is charged its instruction's documented total instead).
ENTRY_UNITS: Final = 1_200  # entrypoint, dispatch, "Instruction: X" log
ACCOUNT_UNITS: Final = 150  # taking an AccountInfo, Signer or Program
LOAD_UNITS: Final = 1_000  # owner + discriminator + Borsh deserialization of one account
ERROR_UNITS: Final = 1_500  # formatting and logging an Anchor error


def share_accounts(refs: Sequence[AccountRef]) -> None:
    """Give each ref a working account, one object per key (see the module docstring)."""
    by_key: dict[Pubkey, Account] = {}
    for ref in refs:
        shared = by_key.get(ref.key)
        if shared is None:
            shared = ref.account or Account(lamports=0, data=b"", owner=SYSTEM_PROGRAM)
            by_key[ref.key] = shared
        ref.account = shared


@dataclass(slots=True)
class Invocation:
    """An instruction being executed: ``ctx`` plus the compute units spent so far."""

    ctx: InstructionContext
    units: int = ENTRY_UNITS

    @property
    def now(self) -> int:
        return self.ctx.unix_timestamp

    def account(self, index: int, field: str | None) -> AccountRef:
        """The ``index``-th account (AccountNotEnoughKeys when missing)."""
        self.units += ACCOUNT_UNITS
        return anchor_checks.take(self.ctx.accounts, index, field)

    def load(
        self, index: int, field: str, kind: anchor_checks.AnchorAccount
    ) -> tuple[AccountRef, bytes]:
        """``Account<'info, T>`` at ``index``: the ref and its checked data."""
        ref = self.account(index, field)
        self.units += LOAD_UNITS
        return ref, anchor_checks.load(ref, field, kind)

    def signer(self, index: int, field: str) -> AccountRef:
        """``Signer<'info>`` at ``index``."""
        ref = self.account(index, field)
        anchor_checks.require_signer(ref, field)
        return ref

    def failed_units(self) -> int:
        return self.units + ERROR_UNITS


def close(account: AccountRef, destination: AccountRef) -> None:
    """Anchor's ``close = destination``: every lamport moves; the account returns to the system."""
    closing, receiving = working_account(account), working_account(destination)
    receiving.lamports += closing.lamports
    closing.lamports, closing.data, closing.owner = 0, b"", SYSTEM_PROGRAM
