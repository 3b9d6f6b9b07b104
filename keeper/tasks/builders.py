"""Action -> Instruction, through ``keeper.program.instructions``.

The sender calls ``instruction_for`` with the real run keypair's address for a claim;
packing measures with ``placeholder_run`` (same size, never sent).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Final

from solders.pubkey import Pubkey

from keeper.program import instructions
from keeper.program.instructions import MaintenanceInstruction
from keeper.tasks.plan import Reason

if TYPE_CHECKING:
    from solders.instruction import Instruction

    from keeper.tasks.identity import ClaimIdentity
    from keeper.tasks.plan import Action

# The decisions that may produce each kind: a mismatch is a bug, refused before signing.
REASONS_FOR: Final = {
    MaintenanceInstruction.CLEAN: frozenset({Reason.JOB_EXPIRED}),
    MaintenanceInstruction.CLEAN_ADMIN: frozenset({Reason.MARKET_GONE}),
    MaintenanceInstruction.QUIT_ADMIN: frozenset(
        {Reason.RUN_TIMED_OUT, Reason.RUN_JOB_MISSING, Reason.RUN_JOB_DONE}
    ),
    MaintenanceInstruction.CLAIM: frozenset({Reason.JOB_STOPPED}),
}


def placeholder_run(job: Pubkey) -> Pubkey:
    """A stand-in run address for measuring a claim (one distinct key per job); never sent."""
    return Pubkey.from_bytes(hashlib.sha256(b"nosana-keeper placeholder run" + bytes(job)).digest())


def instruction_for(
    action: Action,
    *,
    program_id: Pubkey,
    authority: Pubkey,
    claim_identity: ClaimIdentity | None = None,
    run: Pubkey | None = None,
) -> Instruction:
    """The instruction that carries out ``action``.

    ``authority`` signs cleanAdmin/quitAdmin (the market admin keypair). A claim needs the
    node's ``claim_identity`` and ``run``: the address of the new run keypair.
    """
    if action.reason not in REASONS_FOR[action.kind]:
        raise ValueError(f"{action.kind} cannot carry out a {action.reason} decision")
    match action.kind:
        case MaintenanceInstruction.CLEAN:
            accounts = instructions.CleanAccounts(
                job=action.account, market=_market(action), payer=action.payer
            )
            return instructions.clean(accounts, program_id=program_id)
        case MaintenanceInstruction.CLEAN_ADMIN:
            admin = instructions.CleanAdminAccounts(
                job=action.account, payer=action.payer, authority=authority
            )
            return instructions.clean_admin(admin, program_id=program_id)
        case MaintenanceInstruction.QUIT_ADMIN:
            quit_ = instructions.QuitAdminAccounts(
                run=action.account, payer=action.payer, authority=authority
            )
            return instructions.quit_admin(quit_, program_id=program_id)
        case MaintenanceInstruction.CLAIM:
            return _claim(action, program_id, claim_identity, run)


def _market(action: Action) -> Pubkey:
    if action.market is None:
        raise ValueError(f"{action.kind} of {action.account} has no market")
    return action.market


def _claim(
    action: Action, program_id: Pubkey, identity: ClaimIdentity | None, run: Pubkey | None
) -> Instruction:
    if identity is None or run is None:
        raise ValueError("a claim needs the node's claim identity and the new run's address")
    accounts = instructions.ClaimAccounts(
        job=action.account,
        run=run,
        market=_market(action),
        stake=identity.stake,
        nft=identity.nft,
        metadata=identity.metadata,
        payer=action.payer,
        authority=identity.authority,
    )
    return instructions.claim(accounts, program_id=program_id)
