"""The System program's basics: Transfer and CreateAccount. Anything else fails."""

from __future__ import annotations

import struct
from typing import Final

from solders.pubkey import Pubkey

from keeper.localnet.compute_budget import BUILTIN_INSTRUCTION_UNITS
from keeper.localnet.model import Account, AccountRef, InstructionContext, ProgramFailure

SYSTEM_PROGRAM: Final = Pubkey.from_string("11111111111111111111111111111111")
MAX_PERMITTED_DATA_LENGTH: Final = 10 * 1024 * 1024

_CREATE_ACCOUNT: Final = 0
_TRANSFER: Final = 2
_TAG: Final = struct.Struct("<I")
_CREATE_ACCOUNT_ARGS: Final = struct.Struct("<IQQ32s")
_TRANSFER_ARGS: Final = struct.Struct("<IQ")
# SystemError codes, reported as InstructionError Custom(n).
_ACCOUNT_ALREADY_IN_USE: Final = 0
_RESULT_WITH_NEGATIVE_LAMPORTS: Final = 1
_INVALID_ACCOUNT_DATA_LENGTH: Final = 3


class SystemProgram:
    program_id: Pubkey = SYSTEM_PROGRAM

    def execute(self, ctx: InstructionContext) -> None:
        ctx.compute_units += BUILTIN_INSTRUCTION_UNITS
        tag = _TAG.unpack_from(ctx.data)[0] if len(ctx.data) >= _TAG.size else None
        if tag == _TRANSFER and len(ctx.data) == _TRANSFER_ARGS.size:
            _transfer(ctx, _TRANSFER_ARGS.unpack(ctx.data)[1])
        elif tag == _CREATE_ACCOUNT and len(ctx.data) == _CREATE_ACCOUNT_ARGS.size:
            _, lamports, space, owner = _CREATE_ACCOUNT_ARGS.unpack(ctx.data)
            _create_account(ctx, lamports, space, Pubkey(owner))
        else:
            raise ProgramFailure("InvalidInstructionData", builtin="InvalidInstructionData")


def _two_accounts(ctx: InstructionContext) -> tuple[AccountRef, AccountRef]:
    if len(ctx.accounts) < 2:
        raise ProgramFailure("NotEnoughAccountKeys", builtin="NotEnoughAccountKeys")
    return ctx.accounts[0], ctx.accounts[1]


def _debit(ctx: InstructionContext, source: AccountRef, lamports: int) -> Account:
    if not source.is_signer:
        ctx.log(f"Transfer: `from` account {source.key} must sign")
        raise ProgramFailure("MissingRequiredSignature", builtin="MissingRequiredSignature")
    account = source.account
    if account is not None and account.data:
        ctx.log("Transfer: `from` must not carry data")
        raise ProgramFailure("InvalidArgument", builtin="InvalidArgument")
    balance = 0 if account is None else account.lamports
    if account is None or balance < lamports:
        ctx.log(f"Transfer: insufficient lamports {balance}, need {lamports}")
        raise ProgramFailure("ResultWithNegativeLamports", custom=_RESULT_WITH_NEGATIVE_LAMPORTS)
    account.lamports -= lamports
    return account


def _transfer(ctx: InstructionContext, lamports: int) -> None:
    source, destination = _two_accounts(ctx)
    _debit(ctx, source, lamports)
    if destination.account is None:
        destination.account = Account(lamports=0, data=b"", owner=SYSTEM_PROGRAM)
    destination.account.lamports += lamports


def _create_account(ctx: InstructionContext, lamports: int, space: int, owner: Pubkey) -> None:
    source, new = _two_accounts(ctx)
    existing = new.account
    if existing is not None and (existing.lamports or existing.data):
        ctx.log(f"Create Account: account Address {{ address: {new.key}, base: None }} in use")
        raise ProgramFailure("AccountAlreadyInUse", custom=_ACCOUNT_ALREADY_IN_USE)
    if not new.is_signer:
        raise ProgramFailure("MissingRequiredSignature", builtin="MissingRequiredSignature")
    if space > MAX_PERMITTED_DATA_LENGTH:
        raise ProgramFailure("InvalidAccountDataLength", custom=_INVALID_ACCOUNT_DATA_LENGTH)
    _debit(ctx, source, lamports)
    new.account = Account(lamports=lamports, data=bytes(space), owner=owner)
