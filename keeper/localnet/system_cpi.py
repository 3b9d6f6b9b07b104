"""A program's cross-program invocations of the System program, as the runtime runs them.

Anchor's ``init`` creates an account through the System program. Before the callee runs,
the runtime refuses to escalate privileges (an account the caller received read-only or
unsigned cannot become writable or signed in the callee: PrivilegeEscalation). Then the
System program applies its own rules (``create_account``, ``transfer``, ``allocate``,
``assign``) with its own log lines and errors (``SystemError`` codes are Custom: 0 =
AccountAlreadyInUse, 1 = ResultWithNegativeLamports). A failing CPI ends the calling
program at once: the caller logs nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from keeper.localnet.anchor_checks import Rejection
from keeper.localnet.model import Account, AccountRef, ProgramFailure
from keeper.program.ids import SYSTEM_PROGRAM

if TYPE_CHECKING:
    from collections.abc import Sequence

    from solders.pubkey import Pubkey

# Compute units the System program charges per instruction.
SYSTEM_PROGRAM_UNITS: Final = 150
# What invoking another program costs the caller.
INVOKE_UNITS: Final = 1_000

_PROGRAM: Final = f"Program {SYSTEM_PROGRAM}"
_ALREADY_IN_USE: Final = ("AccountAlreadyInUse", 0)
_NEGATIVE_LAMPORTS: Final = ("ResultWithNegativeLamports", 1)
# How "Program <id> failed: <error>" spells the built-in InstructionErrors used here.
_BUILTIN_TEXT: Final = {
    "MissingRequiredSignature": "missing required signature for instruction",
    "InvalidArgument": "invalid program argument",
    "ExternalAccountLamportSpend": (
        "instruction spent from the balance of an account it does not own"
    ),
}


@dataclass(frozen=True, slots=True)
class CpiMeta:
    """One account of the callee instruction with the privileges it asks for."""

    ref: AccountRef
    writable: bool
    signer: bool


def check_privileges(logs: list[str], metas: Sequence[CpiMeta]) -> None:
    """The runtime's check before a CPI (no PDA signers here: the jobs program signs none)."""
    for meta in metas:
        if meta.writable and not meta.ref.is_writable:
            _escalated(logs, meta.ref.key, "writable")
        if meta.signer and not meta.ref.is_signer:
            _escalated(logs, meta.ref.key, "signer")


def _escalated(logs: list[str], key: Pubkey, privilege: str) -> None:
    logs.append(f"{key}'s {privilege} privilege escalated")
    failure = ProgramFailure("PrivilegeEscalation", builtin="PrivilegeEscalation")
    raise Rejection(failure, logs)


def _address(key: Pubkey) -> str:
    return f"Address {{ address: {key}, base: None }}"


def working_account(ref: AccountRef) -> Account:
    """The account behind ``ref``; the program gives every ref one (zero lamports: absent)."""
    if ref.account is None:
        raise RuntimeError(f"{ref.key}: no working account (refs are normalized on entry)")
    return ref.account


class _SystemCall:
    """One System program instruction invoked from a program: its log lines and failures."""

    def __init__(self, logs: list[str]) -> None:
        self.logs = logs
        self.logs.append(f"{_PROGRAM} invoke [2]")

    def fail_custom(self, message: str, error: tuple[str, int]) -> Rejection:
        name, code = error
        self.logs += [message, f"{_PROGRAM} failed: custom program error: {code:#x}"]
        return Rejection(ProgramFailure(name, custom=code), self.logs)

    def fail_builtin(self, name: str, message: str | None = None) -> Rejection:
        self.logs += [*([message] if message else []), f"{_PROGRAM} failed: {_BUILTIN_TEXT[name]}"]
        return Rejection(ProgramFailure(name, builtin=name), self.logs)

    def succeed(self) -> None:
        self.logs.append(f"{_PROGRAM} success")


def _debit(call: _SystemCall, source: AccountRef, lamports: int) -> None:
    """The System program's transfer rules for its ``from`` account, then the debit."""
    account = working_account(source)
    if not source.is_signer:
        message = f"Transfer: `from` account {source.key} must sign"
        raise call.fail_builtin("MissingRequiredSignature", message)
    if account.data:
        raise call.fail_builtin("InvalidArgument", "Transfer: `from` must not carry data")
    if lamports > account.lamports:
        message = f"Transfer: insufficient lamports {account.lamports}, need {lamports}"
        raise call.fail_custom(message, _NEGATIVE_LAMPORTS)
    if lamports and account.owner != SYSTEM_PROGRAM:
        raise call.fail_builtin("ExternalAccountLamportSpend")  # only an owner may debit
    account.lamports -= lamports


def _in_use(account: Account) -> bool:
    return bool(account.data) or account.owner != SYSTEM_PROGRAM


def create_account(
    logs: list[str], *, payer: AccountRef, new: AccountRef, lamports: int, space: int, owner: Pubkey
) -> None:
    """``create_account`` via CPI: ``new`` becomes a zeroed account owned by ``owner``."""
    metas = [CpiMeta(payer, writable=True, signer=True), CpiMeta(new, writable=True, signer=True)]
    check_privileges(logs, metas)
    call = _SystemCall(logs)
    account = working_account(new)
    if account.lamports > 0:
        message = f"Create Account: account {_address(new.key)} already in use"
        raise call.fail_custom(message, _ALREADY_IN_USE)
    if _in_use(account):
        message = f"Allocate: account {_address(new.key)} already in use"
        raise call.fail_custom(message, _ALREADY_IN_USE)
    _debit(call, payer, lamports)
    account.lamports, account.data, account.owner = lamports, bytes(space), owner
    call.succeed()


def transfer(
    logs: list[str], *, source: AccountRef, destination: AccountRef, lamports: int
) -> None:
    """``system_instruction::transfer`` via CPI."""
    metas = [
        CpiMeta(source, writable=True, signer=True),
        CpiMeta(destination, writable=True, signer=False),
    ]
    check_privileges(logs, metas)
    call = _SystemCall(logs)
    _debit(call, source, lamports)
    working_account(destination).lamports += lamports
    call.succeed()


def allocate_and_assign(logs: list[str], *, target: AccountRef, space: int, owner: Pubkey) -> None:
    """``allocate`` then ``assign`` via CPI, as Anchor's ``init`` does for a funded address."""
    check_privileges(logs, [CpiMeta(target, writable=True, signer=True)])
    call = _SystemCall(logs)
    account = working_account(target)
    if _in_use(account):
        message = f"Allocate: account {_address(target.key)} already in use"
        raise call.fail_custom(message, _ALREADY_IN_USE)
    account.data = bytes(space)
    call.succeed()
    # assign: same privileges as allocate, already checked; a signed system account may move.
    _SystemCall(logs).succeed()
    account.owner = owner
