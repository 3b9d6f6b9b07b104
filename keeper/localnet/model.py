"""The contract between the local chain's runtime and the programs it runs.

The runtime (``runtime.py``) verifies a transaction, then for each instruction builds an
``InstructionContext`` over *working copies* of the accounts and calls the program's
``execute``. A program raises ``ProgramFailure`` to reject; the runtime then discards every
working copy of the transaction (atomicity) and reports
``InstructionError [index, {"Custom": code}]`` with the logs collected so far.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from solders.pubkey import Pubkey


@dataclass(slots=True)
class Account:
    """An account as the ledger stores it. ``lamports == 0`` means it does not exist."""

    lamports: int
    data: bytes
    owner: Pubkey
    executable: bool = False


@dataclass(slots=True)
class AccountRef:
    """One account as an instruction sees it: its meta flags and a mutable working copy.

    ``account`` is None when nothing exists at ``key``. A program "closes" an account by
    setting lamports to 0 and data to b"" (the runtime then drops it) and "creates" one by
    assigning a new ``Account``.
    """

    key: Pubkey
    is_signer: bool
    is_writable: bool
    account: Account | None


class ProgramFailure(Exception):
    """The program rejected the instruction.

    ``custom`` is the u32 of ``InstructionError [i, {"Custom": custom}]``; when ``custom`` is
    None, ``builtin`` names a built-in InstructionError (e.g. "MissingRequiredSignature").
    ``name`` is what the program logs as ``Error Code: <name>``.
    """

    def __init__(self, name: str, *, custom: int | None = None, builtin: str | None = None) -> None:
        super().__init__(name)
        self.name = name
        self.custom = custom
        self.builtin = builtin


@dataclass(slots=True)
class InstructionContext:
    program_id: Pubkey
    data: bytes
    accounts: list[AccountRef]
    unix_timestamp: int  # the chain clock (Clock sysvar), not wall time
    slot: int
    rent_exempt_minimum: RentCalculator
    logs: list[str] = field(default_factory=list)
    compute_units: int = 0  # the program adds what it consumes

    def log(self, message: str) -> None:
        self.logs.append(f"Program log: {message}")


class RentCalculator(Protocol):
    def __call__(self, data_len: int) -> int: ...


class Program(Protocol):
    """A program the runtime can execute."""

    program_id: Pubkey

    def execute(self, ctx: InstructionContext) -> None: ...
