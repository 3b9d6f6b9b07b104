"""Builders for the four maintenance instructions, in the style of anchorpy's clients.

Accounts are written in program order, so each list reads against the IDL line by line.
Instruction data is the anchor sighash from anchorpy's coder (none take arguments).
``allowed`` is the signing allow-list: only these four and compute-budget instructions,
only for the configured program id.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import TYPE_CHECKING

from solders.compute_budget import set_compute_unit_limit, set_compute_unit_price
from solders.instruction import AccountMeta, Instruction

from keeper.program.anchor import instruction_data
from keeper.program.ids import COMPUTE_BUDGET_PROGRAM, MAINNET, SYSTEM_PROGRAM

if TYPE_CHECKING:
    from solders.pubkey import Pubkey


class MaintenanceInstruction(StrEnum):
    """The four instructions a keeper may send, by their IDL names."""

    CLEAN = "clean"
    CLEAN_ADMIN = "cleanAdmin"
    QUIT_ADMIN = "quitAdmin"
    CLAIM = "claim"

    @property
    def snake_name(self) -> str:
        return {"cleanAdmin": "clean_admin", "quitAdmin": "quit_admin"}.get(self.value, self.value)


@cache
def discriminator(kind: MaintenanceInstruction) -> bytes:
    return instruction_data(kind.snake_name)


@dataclass(frozen=True, slots=True)
class CleanAccounts:
    job: Pubkey
    market: Pubkey
    payer: Pubkey


@dataclass(frozen=True, slots=True)
class CleanAdminAccounts:
    job: Pubkey
    payer: Pubkey
    authority: Pubkey


@dataclass(frozen=True, slots=True)
class QuitAdminAccounts:
    run: Pubkey
    payer: Pubkey
    authority: Pubkey


@dataclass(frozen=True, slots=True)
class ClaimAccounts:
    job: Pubkey
    run: Pubkey
    market: Pubkey
    stake: Pubkey
    nft: Pubkey
    metadata: Pubkey
    payer: Pubkey
    authority: Pubkey


def _writable(key: Pubkey, *, signer: bool = False) -> AccountMeta:
    return AccountMeta(key, is_signer=signer, is_writable=True)


def _readonly(key: Pubkey, *, signer: bool = False) -> AccountMeta:
    return AccountMeta(key, is_signer=signer, is_writable=False)


def clean(accounts: CleanAccounts, *, program_id: Pubkey = MAINNET.jobs_program) -> Instruction:
    metas = [
        _writable(accounts.job),
        _readonly(accounts.market),
        _writable(accounts.payer),
    ]
    return Instruction(program_id, discriminator(MaintenanceInstruction.CLEAN), metas)


def clean_admin(
    accounts: CleanAdminAccounts, *, program_id: Pubkey = MAINNET.jobs_program
) -> Instruction:
    metas = [
        _writable(accounts.job),
        _writable(accounts.payer),
        _readonly(accounts.authority, signer=True),
    ]
    return Instruction(program_id, discriminator(MaintenanceInstruction.CLEAN_ADMIN), metas)


def quit_admin(
    accounts: QuitAdminAccounts, *, program_id: Pubkey = MAINNET.jobs_program
) -> Instruction:
    metas = [
        _writable(accounts.run),
        _writable(accounts.payer),
        _readonly(accounts.authority, signer=True),
    ]
    return Instruction(program_id, discriminator(MaintenanceInstruction.QUIT_ADMIN), metas)


def claim(accounts: ClaimAccounts, *, program_id: Pubkey = MAINNET.jobs_program) -> Instruction:
    metas = [
        _writable(accounts.job),
        _writable(accounts.run, signer=True),
        _readonly(accounts.market),
        _readonly(accounts.stake),
        _readonly(accounts.nft),
        _readonly(accounts.metadata),
        _writable(accounts.payer, signer=True),
        _readonly(accounts.authority, signer=True),
        _readonly(SYSTEM_PROGRAM),
    ]
    return Instruction(program_id, discriminator(MaintenanceInstruction.CLAIM), metas)


def compute_unit_limit(units: int) -> Instruction:
    return set_compute_unit_limit(units)


def compute_unit_price(micro_lamports: int) -> Instruction:
    return set_compute_unit_price(micro_lamports)


def maintenance_kind(ix: Instruction, program_id: Pubkey) -> MaintenanceInstruction | None:
    """Which maintenance instruction ``ix`` is, or None if it is none of the four."""
    if ix.program_id != program_id:
        return None
    for kind in MaintenanceInstruction:
        if bytes(ix.data) == discriminator(kind):
            return kind
    return None


# Each instruction's accounts as (is_signer, is_writable), in order: exactly what the
# builders above make and the program's Accounts structs ask for.
_W, _R, _WS, _RS = (False, True), (False, False), (True, True), (True, False)
_EXPECTED_FLAGS = {
    MaintenanceInstruction.CLEAN: (_W, _R, _W),
    MaintenanceInstruction.CLEAN_ADMIN: (_W, _W, _RS),
    MaintenanceInstruction.QUIT_ADMIN: (_W, _W, _RS),
    MaintenanceInstruction.CLAIM: (_W, _WS, _R, _R, _R, _R, _WS, _RS, _R),
}

# SetComputeUnitLimit (tag 2, u32) and SetComputeUnitPrice (tag 3, u64) only, each with
# exactly its own data length; never heap or data-size requests.
_COMPUTE_BUDGET_DATA_LENGTHS = {2: 1 + 4, 3: 1 + 8}


def allowed(ix: Instruction, program_id: Pubkey) -> bool:
    """True only for the four maintenance instructions of ``program_id`` and compute budget."""
    if ix.program_id == COMPUTE_BUDGET_PROGRAM:
        data = bytes(ix.data)
        expected_length = _COMPUTE_BUDGET_DATA_LENGTHS.get(data[0]) if data else None
        return expected_length == len(data) and not ix.accounts
    kind = maintenance_kind(ix, program_id)
    if kind is None:
        return False
    flags = tuple((meta.is_signer, meta.is_writable) for meta in ix.accounts)
    if flags != _EXPECTED_FLAGS[kind]:
        return False
    return kind is not MaintenanceInstruction.CLAIM or ix.accounts[-1].pubkey == SYSTEM_PROGRAM
