"""Expired runs: close RunAccounts that outlived their job with ``quitAdmin``.

A run is quit, when the keypair is the market admin, if any of:

1. chain time > run.time + job.timeout + grace (strict; re-read before sending:
   ``extend`` can raise the timeout while the job runs) -> RUN_TIMED_OUT;
2. its job account no longer exists -> RUN_JOB_MISSING;
3. its job is Done (state 2): a run never legitimately outlives its job's finish and can
   pay out twice, so no grace -> RUN_JOB_DONE.

Left alone: a run whose job is a legacy 232-byte job that is not Done (its timeout is
unknown), a job with a state byte the program does not write, an account at the job's
address that is not a job. ``now`` is chain time; there is no clock here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from keeper.program.instructions import MaintenanceInstruction
from keeper.program.layouts import RUN_RENT_LAMPORTS, JobAccount, RunAccount
from keeper.program.state import JobState
from keeper.tasks.plan import ACTION_REASONS, Action, Plan, PlanBuilder, Reason, Task
from keeper.tasks.views import Absent, Foreign, require

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from solders.pubkey import Pubkey

    from keeper.tasks.views import JobView, RunView


@dataclass(frozen=True, slots=True)
class ExpiredRunsParams:
    """``is_admin``: the keypair is MARKET_ADMIN. ``grace_seconds`` is added to the timeout."""

    is_admin: bool
    grace_seconds: int = 0

    def __post_init__(self) -> None:
        if self.grace_seconds < 0:
            raise ValueError(f"grace_seconds must be >= 0, not {self.grace_seconds}")


def verdict(run: RunAccount, job: JobView, now: int, grace_seconds: int) -> Reason:
    """Why ``run`` would be quit (an action reason) or left alone; admin rights aside."""
    if isinstance(job, Absent):
        return Reason.RUN_JOB_MISSING
    if isinstance(job, Foreign):
        return Reason.UNDECODABLE
    if job.state == JobState.DONE:  # also for a legacy job: quitAdmin never loads the job
        return Reason.RUN_JOB_DONE
    return _timeout_verdict(run, job, now, grace_seconds)


def _timeout_verdict(run: RunAccount, job: JobAccount, now: int, grace_seconds: int) -> Reason:
    if job.timeout is None:
        return Reason.LEGACY_LAYOUT  # timeout unknown: never guess
    if JobState.from_byte(job.state) is None:
        return Reason.UNKNOWN_STATE
    # Python ints: no overflow whatever the stored i64 values.
    if now > run.time + job.timeout + grace_seconds:
        return Reason.RUN_TIMED_OUT
    return Reason.RUN_NOT_TIMED_OUT


def decide(  # noqa: PLR0913 - runs, their jobs, time, policy, refunds, bound
    runs: Sequence[tuple[Pubkey, RunAccount]],
    jobs: Mapping[Pubkey, JobView],
    now: int,
    params: ExpiredRunsParams,
    *,
    lamports: Mapping[Pubkey, int] | None = None,
    limit: int | None = None,
) -> Plan:
    """Plan ``quitAdmin`` for the runs that qualify, at most ``limit`` (the earliest due).

    ``jobs`` must hold a view for every run's job (``ABSENT`` when it does not exist: a job
    that was simply not fetched must never look missing). ``lamports`` are the runs'
    balances when known (the refund); otherwise the run rent at default rates.
    """
    plan = PlanBuilder(Task.EXPIRED_RUNS, limit=limit)
    for key, run in runs:
        job = require(jobs, run.job, "job")
        reason = verdict(run, job, now, params.grace_seconds)
        if reason not in ACTION_REASONS:
            plan.skip(reason)
        elif not params.is_admin:
            plan.skip(Reason.NOT_ADMIN)
        else:
            refund = RUN_RENT_LAMPORTS if lamports is None else lamports.get(key, RUN_RENT_LAMPORTS)
            due = due_at(run, job, reason, params.grace_seconds)
            market = job.market if isinstance(job, JobAccount) else None
            plan.act(quit_action(key, run, reason, refund, due, market=market))
    return plan.build()


def upcoming(
    runs: Sequence[tuple[Pubkey, RunAccount]],
    jobs: Mapping[Pubkey, JobView],
    now: int,
    params: ExpiredRunsParams,
    *,
    limit: int,
) -> Plan:
    """The runs that have *not yet* timed out at ``now``, as the quit each will need once
    it does (``due_at``: the timeout's end), at most ``limit`` (the earliest due; the rest
    are waiting). Live mode files them, so a run seen only by a full read is quit when it
    times out without another read. Nothing without admin rights (quitAdmin needs them)."""
    plan = PlanBuilder(Task.EXPIRED_RUNS, limit=limit)
    if not params.is_admin:
        return plan.build()
    for key, run in runs:
        job = require(jobs, run.job, "job")
        if verdict(run, job, now, params.grace_seconds) is not Reason.RUN_NOT_TIMED_OUT:
            continue
        assert isinstance(job, JobAccount)
        assert job.timeout is not None  # RUN_NOT_TIMED_OUT needs one
        due = run.time + job.timeout + params.grace_seconds
        reason = Reason.RUN_TIMED_OUT
        plan.act(quit_action(key, run, reason, RUN_RENT_LAMPORTS, due, market=job.market))
    return plan.build()


def due_at(run: RunAccount, job: JobView, reason: Reason, grace_seconds: int) -> int:
    """From when a quit is due: the timeout's end for a timed-out run; otherwise (job gone
    or Done) the run's start, the latest it can have become due without a later read."""
    if reason is Reason.RUN_TIMED_OUT and isinstance(job, JobAccount) and job.timeout is not None:
        return run.time + job.timeout + grace_seconds
    return run.time


def quit_action(  # noqa: PLR0913 - the action's own fields
    key: Pubkey,
    run: RunAccount,
    reason: Reason,
    refund: int,
    due: int = 0,
    *,
    market: Pubkey | None = None,
) -> Action:
    """``market`` is the run's job's market, for reports only (quitAdmin does not load it)."""
    return Action(
        kind=MaintenanceInstruction.QUIT_ADMIN,
        account=key,
        reason=reason,
        payer=run.payer,
        market=market,
        job=run.job,
        lamports=refund,
        due_at=due,
    )


def recheck(
    action: Action,
    run: RunView | None,
    job: JobView,
    now: int,
    params: ExpiredRunsParams,
) -> Reason | None:
    """Re-judge ``action`` on accounts re-read just before sending.

    None: still send. Otherwise the reason to drop it: the run is gone (ALREADY_CLOSED), it
    no longer matches the action (STATE_CHANGED), or it no longer qualifies (e.g. an
    ``extend`` raised the timeout: RUN_NOT_TIMED_OUT).
    """
    if action.kind is not MaintenanceInstruction.QUIT_ADMIN:
        raise ValueError(f"expired_runs cannot recheck a {action.kind} action")
    if run is None or isinstance(run, Absent):
        return Reason.ALREADY_CLOSED
    if isinstance(run, Foreign):
        return Reason.UNDECODABLE
    if run.payer != action.payer or run.job != action.job:
        return Reason.STATE_CHANGED
    reason = verdict(run, job, now, params.grace_seconds)
    if reason not in ACTION_REASONS:
        return reason
    if not params.is_admin:
        return Reason.NOT_ADMIN
    return None
