"""The Nosana Jobs program's four maintenance instructions, as the local chain runs them.

Each handler makes the program's checks in the order Anchor 1.0 generates them from the
program's ``#[derive(Accounts)]`` structs (see ``anchor_checks``), so a rejected
instruction fails with the same error and log line as on a real cluster. Everything
else the program can do (``list``, ``quit``, ``finish``, ...) is not modelled: any other
instruction data fails with InstructionFallbackNotFound (101), unlike the real program,
which would run those instructions.

Compute units (estimates in the range Anchor programs of this size use, not
measurements): ``clean`` 9,000; ``cleanAdmin`` and ``quitAdmin`` 6,000; ``claim`` 45,000
(it derives two PDAs, parses Metaplex metadata and creates the run through the System
program). A failed call is charged the rough cost of the work before the failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from keeper.localnet import anchor_checks as anchor
from keeper.localnet.account_kinds import AccountKinds, account_kinds
from keeper.localnet.anchor_checks import Rejection
from keeper.localnet.claim import ClaimRules, claim
from keeper.localnet.invocation import Invocation, close, share_accounts
from keeper.localnet.model import ProgramFailure
from keeper.program.instructions import MaintenanceInstruction, discriminator
from keeper.program.layouts import decode_job, decode_market, decode_run
from keeper.program.state import JobState

if TYPE_CHECKING:
    from collections.abc import Callable

    from solders.pubkey import Pubkey

    from keeper.localnet.model import InstructionContext

CLEAN_UNITS: Final = 9_000
CLEAN_ADMIN_UNITS: Final = 6_000
QUIT_ADMIN_UNITS: Final = 6_000
CLAIM_UNITS: Final = 45_000

# Anchor's event-CPI tag: programs built without `event-cpi` answer it with error 1500.
EVENT_IX_TAG: Final = (0x1D9ACB512EA545E4).to_bytes(8, "little")

_I64_MIN: Final = -(2**63)
_I64_MAX: Final = 2**63 - 1
# Where the expiry subtraction sits in the program (it panics on i64 overflow).
_CLEAN_EXPIRY_SOURCE: Final = "programs/nosana-jobs/src/instructions/clean.rs:11:58"


@dataclass(frozen=True, slots=True)
class _Entry:
    log_name: str  # "Instruction: <log_name>", Anchor's CamelCase of the method
    handler: Callable[[JobsProgram, Invocation], None]
    units: int


class JobsProgram:
    """The jobs program model (``keeper.localnet.model.Program``).

    ``market_admin`` is the program's compiled-in MARKET_ADMIN; ``nos_mint`` its compiled-in
    NOS_TOKEN (it seeds the node stake PDA checked by ``claim``).
    """

    def __init__(self, *, program_id: Pubkey, market_admin: Pubkey, nos_mint: Pubkey) -> None:
        self.program_id = program_id
        self.market_admin = market_admin
        self.nos_mint = nos_mint
        self.kinds: AccountKinds = account_kinds(program_id)
        self._routes: dict[bytes, _Entry] = {
            discriminator(MaintenanceInstruction.CLEAN): _Entry("Clean", _clean, CLEAN_UNITS),
            discriminator(MaintenanceInstruction.CLEAN_ADMIN): _Entry(
                "CleanAdmin", _clean_admin, CLEAN_ADMIN_UNITS
            ),
            discriminator(MaintenanceInstruction.QUIT_ADMIN): _Entry(
                "QuitAdmin", _quit_admin, QUIT_ADMIN_UNITS
            ),
            discriminator(MaintenanceInstruction.CLAIM): _Entry("Claim", self._claim, CLAIM_UNITS),
        }

    def execute(self, ctx: InstructionContext) -> None:
        """Run one instruction; raises ``ProgramFailure`` (after logging) to reject it."""
        share_accounts(ctx.accounts)
        call = Invocation(ctx)
        try:
            entry = self._route(ctx.data)
            ctx.log(f"Instruction: {entry.log_name}")
            entry.handler(self, call)
        except Rejection as rejection:
            ctx.logs.extend(rejection.logs)
            ctx.compute_units += call.failed_units()
            raise rejection.failure from None
        ctx.compute_units += entry.units

    def _route(self, data: bytes) -> _Entry:
        # Anchor dispatches on "data starts with the discriminator"; trailing bytes are ignored.
        entry = self._routes.get(bytes(data[:8]))
        if entry is not None:
            return entry
        if data.startswith(EVENT_IX_TAG):
            raise anchor.anchor_error("EventInstructionStub")
        raise anchor.anchor_error("InstructionFallbackNotFound")

    @staticmethod
    def _claim(program: JobsProgram, call: Invocation) -> None:
        rules = ClaimRules(
            program_id=program.program_id, nos_mint=program.nos_mint, kinds=program.kinds
        )
        claim(call, rules)


def _clean(program: JobsProgram, call: Invocation) -> None:
    """``clean``: job (w) closed into payer (w) once past *the passed market's* expiration."""
    job_ref, job_data = call.load(0, "job", program.kinds.job)
    _market_ref, market_data = call.load(1, "market", program.kinds.market)
    payer_ref = call.account(2, "payer")
    job, market = decode_job(job_data), decode_market(market_data)

    anchor.require_mut(job_ref, "job")
    anchor.require_has_one("job", job.payer, payer_ref.key, "InvalidPayer")
    anchor.require(job.state == JobState.DONE, "job", "JobInWrongState")
    elapsed = _checked_sub(call.now, job.time_end)
    # Strict: a job exactly job_expiration seconds old is not yet expired.
    anchor.require(market.job_expiration < elapsed, "job", "JobNotExpired")
    anchor.require_close_target("job", job_ref.key, payer_ref.key)
    anchor.require_mut(payer_ref, "payer")
    close(job_ref, payer_ref)


def _clean_admin(program: JobsProgram, call: Invocation) -> None:
    """``cleanAdmin``: MARKET_ADMIN closes any current-layout job into its payer."""
    job_ref, job_data = call.load(0, "job", program.kinds.job)
    payer_ref = call.account(1, "payer")
    authority_ref = call.signer(2, "authority")
    job = decode_job(job_data)

    anchor.require_mut(job_ref, "job")
    anchor.require_has_one("job", job.payer, payer_ref.key, "InvalidPayer")
    anchor.require_close_target("job", job_ref.key, payer_ref.key)
    anchor.require_mut(payer_ref, "payer")
    anchor.require_address("authority", authority_ref.key, program.market_admin, "Unauthorized")
    close(job_ref, payer_ref)


def _quit_admin(program: JobsProgram, call: Invocation) -> None:
    """``quitAdmin``: MARKET_ADMIN closes a run into its payer; the job is not touched."""
    run_ref, run_data = call.load(0, "run", program.kinds.run)
    payer_ref = call.account(1, "payer")
    authority_ref = call.signer(2, "authority")
    run = decode_run(run_data)

    anchor.require_mut(run_ref, "run")
    anchor.require_has_one("run", run.payer, payer_ref.key, "InvalidPayer")
    anchor.require_close_target("run", run_ref.key, payer_ref.key)
    anchor.require_mut(payer_ref, "payer")
    anchor.require_address("authority", authority_ref.key, program.market_admin, "Unauthorized")
    close(run_ref, payer_ref)


def _checked_sub(left: int, right: int) -> int:
    """i64 subtraction as the program does it (built with overflow-checks: it panics)."""
    result = left - right
    if not _I64_MIN <= result <= _I64_MAX:
        message = (
            f"Program log: panicked at {_CLEAN_EXPIRY_SOURCE}: attempt to subtract with overflow"
        )
        failure = ProgramFailure("ProgramFailedToComplete", builtin="ProgramFailedToComplete")
        raise Rejection(failure, [message])
    return result
