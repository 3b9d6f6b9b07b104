"""The rules a cluster enforces on what one instruction did to its accounts.

Programs here are Python models, so nothing stops them writing where a real program could
not; these checks turn such writes into the InstructionError a cluster reports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from keeper.localnet.model import Account, AccountRef
from keeper.localnet.system_program import SYSTEM_PROGRAM

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from solders.pubkey import Pubkey


def snapshot(account: Account | None) -> Account | None:
    """A copy that later in-place changes to ``account`` cannot reach."""
    if account is None:
        return None
    return Account(account.lamports, account.data, account.owner, account.executable)


def _lamports(account: Account | None) -> int:
    return 0 if account is None else account.lamports


def _unchanged(before: Account | None, after: Account | None) -> bool:
    if before is None or after is None:
        return _lamports(before) == _lamports(after) and not (after and after.data)
    return (
        before.lamports == after.lamports
        and before.data == after.data
        and before.owner == after.owner
        and before.executable == after.executable
    )


def check_effects(
    program_id: Pubkey,
    refs: Sequence[AccountRef],
    before: Mapping[Pubkey, Account | None],
    after: Mapping[Pubkey, Account | None],
) -> str | None:
    """The builtin InstructionError name the instruction's writes earn, or None if fine."""
    flags = {ref.key: ref for ref in reversed(refs)}
    for key, old in before.items():
        new = after[key]
        if _unchanged(old, new):
            continue
        violation = _account_violation(program_id, flags[key], old, new)
        if violation is not None:
            return violation
    if sum(map(_lamports, before.values())) != sum(_lamports(after[key]) for key in before):
        return "UnbalancedInstruction"
    return None


def _account_violation(
    program_id: Pubkey, ref: AccountRef, old: Account | None, new: Account | None
) -> str | None:
    if not ref.is_writable:
        changed_balance = _lamports(old) != _lamports(new)
        return "ReadonlyLamportChange" if changed_balance else "ReadonlyDataModified"
    if old is None:  # created (a real program would CPI the system program)
        return None
    if new is not None and new.executable != old.executable:
        return "ExecutableModified"
    return None if old.owner == program_id else _external_violation(ref, old, new)


def _external_violation(ref: AccountRef, old: Account, new: Account | None) -> str | None:
    """Writes to an account the instruction's program does not own."""
    new_data = b"" if new is None else new.data
    new_owner = old.owner if new is None else new.owner
    if new_data != old.data or new_owner != old.owner:
        return "ExternalAccountDataModified"
    # Spending a signer's system account stands for a CPI transfer the signer authorised.
    may_spend = old.owner == SYSTEM_PROGRAM and ref.is_signer
    if _lamports(new) < old.lamports and not may_spend:
        return "ExternalAccountLamportSpend"
    return None
