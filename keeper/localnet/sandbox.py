"""Run single instructions of the jobs program against a world's accounts, with no runtime.

No signatures, fees, blockhashes or compute limits: just ``InstructionContext`` built from
an instruction's metas and a copy of the world's accounts, as the runtime builds it. Tests
use it to pin each program check; the runtime adds the transaction rules on top.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from keeper.localnet.builder import minimum_balance
from keeper.localnet.jobs_program import JobsProgram
from keeper.localnet.model import AccountRef, InstructionContext, ProgramFailure

if TYPE_CHECKING:
    from solders.instruction import Instruction
    from solders.pubkey import Pubkey

    from keeper.localnet.builder import World
    from keeper.localnet.model import Account


@dataclass(frozen=True, slots=True)
class Outcome:
    failure: ProgramFailure | None
    logs: list[str] = field(default_factory=list)
    compute_units: int = 0

    @property
    def ok(self) -> bool:
        return self.failure is None

    @property
    def custom(self) -> int | None:
        return None if self.failure is None else self.failure.custom

    @property
    def error(self) -> str | None:
        """The failure's name (``Error Code`` or built-in error), None on success."""
        return None if self.failure is None else self.failure.name


class Sandbox:
    """A world's accounts and the jobs program; successful instructions are committed."""

    def __init__(self, world: World, program: JobsProgram | None = None) -> None:
        self.world = world
        self.now = world.unix_timestamp
        self.accounts: dict[Pubkey, Account] = dict(world.accounts)
        self.program = program or JobsProgram(
            program_id=world.program_id, market_admin=world.market_admin, nos_mint=world.nos_mint
        )

    def account(self, key: Pubkey) -> Account | None:
        return self.accounts.get(key)

    def execute(self, ix: Instruction, *, unix_timestamp: int | None = None) -> Outcome:
        """Run ``ix`` at ``unix_timestamp`` (default: the world's clock)."""
        working = {meta.pubkey: copy.copy(self.accounts.get(meta.pubkey)) for meta in ix.accounts}
        refs = [
            AccountRef(meta.pubkey, meta.is_signer, meta.is_writable, working[meta.pubkey])
            for meta in ix.accounts
        ]
        ctx = InstructionContext(
            program_id=ix.program_id,
            data=bytes(ix.data),
            accounts=refs,
            unix_timestamp=self.now if unix_timestamp is None else unix_timestamp,
            slot=1,
            rent_exempt_minimum=minimum_balance,
        )
        try:
            self.program.execute(ctx)
        except ProgramFailure as failure:
            return Outcome(failure, ctx.logs, ctx.compute_units)
        for ref in refs:
            if ref.account is None or ref.account.lamports == 0:
                self.accounts.pop(ref.key, None)
            else:
                self.accounts[ref.key] = ref.account
        return Outcome(None, ctx.logs, ctx.compute_units)
