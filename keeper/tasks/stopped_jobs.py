"""Stopped jobs: ``claim`` a Stopped job (state 3) as the configured node.

Claim only when claiming is enabled and a node identity is configured, and only a job
that: is of the current layout, is in state 3, has no RunAccount pointing at it (the
program happily creates a second run, and a second run means a double payout), whose own
market exists, and whose market's ``node_xnos_minimum`` the node's stake meets. The same
checks run again on accounts re-read just before sending (``recheck``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from keeper.program.instructions import MaintenanceInstruction
from keeper.program.layouts import RUN_RENT_LAMPORTS, JobAccount, MarketAccount, StakeAccount
from keeper.program.state import JobState
from keeper.tasks.census import classify_job
from keeper.tasks.plan import Action, Plan, PlanBuilder, Reason, Task
from keeper.tasks.views import ABSENT, require

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Mapping, Sequence

    from solders.pubkey import Pubkey

    from keeper.tasks.identity import ClaimIdentity
    from keeper.tasks.views import JobView, MarketView, StakeView


@dataclass(frozen=True, slots=True)
class StoppedJobsParams:
    """``payer`` is the keeper's fee payer: it signs each claim and pays the new run's rent."""

    claim_enabled: bool
    identity: ClaimIdentity | None
    payer: Pubkey


def job_verdict(job: JobView, *, has_run: bool, params: StoppedJobsParams) -> Reason | None:
    """Why the job itself rules a claim out, or None when only market and stake remain."""
    left_alone = classify_job(job)
    if left_alone is not None:
        return left_alone
    if not isinstance(job, JobAccount) or job.state != JobState.STOPPED:
        return Reason.STATE_CHANGED  # Done (or no longer Stopped): not this task's work
    return _stopped_verdict(has_run=has_run, params=params)


def _stopped_verdict(*, has_run: bool, params: StoppedJobsParams) -> Reason | None:
    """For a current-layout Stopped job: why it cannot be claimed, before market and stake."""
    if has_run:
        return Reason.JOB_RUNNING
    if not params.claim_enabled or params.identity is None:
        return Reason.CLAIM_DISABLED
    return None


def claim_verdict(market: MarketView, stake: StakeView, identity: ClaimIdentity) -> Reason:
    """JOB_STOPPED when the program would accept the node's claim in ``market``."""
    if not isinstance(market, MarketAccount):
        return Reason.MARKET_INVALID if market is not ABSENT else Reason.MARKET_MISSING
    if not isinstance(stake, StakeAccount) or stake.authority != identity.authority:
        return Reason.STAKE_MISSING
    if stake.xnos < market.node_xnos_minimum:
        return Reason.STAKE_TOO_LOW
    return Reason.JOB_STOPPED


def decide(
    jobs: Sequence[tuple[Pubkey, JobView]],
    *,
    jobs_with_runs: Collection[Pubkey],
    markets: Mapping[Pubkey, MarketView],
    params: StoppedJobsParams,
    stake: StakeView = ABSENT,
) -> Plan:
    """Plan ``claim`` for the Stopped jobs that qualify.

    ``jobs_with_runs``: every job some RunAccount points at. ``markets`` must hold a view of
    each candidate's market (``ABSENT`` when gone); ``stake`` is the node's stake account.
    """
    plan = PlanBuilder(Task.STOPPED_JOBS)
    for key, job in jobs:
        reason = job_verdict(job, has_run=key in jobs_with_runs, params=params)
        if reason is None and isinstance(job, JobAccount) and params.identity is not None:
            market = require(markets, job.market, "market")
            reason = claim_verdict(market, stake, params.identity)
        if reason is Reason.JOB_STOPPED and isinstance(job, JobAccount):
            plan.act(claim_action(key, job, params.payer))
        elif reason is not None:
            plan.skip(reason)
    return plan.build()


def decide_stopped(  # noqa: PLR0913 - the sweep's rows and what judges them
    jobs: Iterable[tuple[Pubkey, Pubkey, int]],
    *,
    jobs_with_runs: Collection[Pubkey],
    markets: Mapping[Pubkey, MarketView],
    params: StoppedJobsParams,
    stake: StakeView = ABSENT,
    limit: int | None = None,
) -> Plan:
    """``decide`` for the rows of a full read: ``(job, its market, time_end)`` of each
    current-layout Stopped job (the read's slice, not a decoded account; legacy ones are
    counted by the read). At most ``limit`` claims, the longest stopped first."""
    plan = PlanBuilder(Task.STOPPED_JOBS, limit=limit)
    for key, market_key, time_end in jobs:
        reason = _stopped_verdict(has_run=key in jobs_with_runs, params=params)
        if reason is None and params.identity is not None:
            market = require(markets, market_key, "market")
            reason = claim_verdict(market, stake, params.identity)
        if reason is Reason.JOB_STOPPED:
            plan.act(claim_action_in(key, market_key, params.payer, due_at=time_end))
        elif reason is not None:
            plan.skip(reason)
    return plan.build()


def claim_action(key: Pubkey, job: JobAccount, payer: Pubkey) -> Action:
    return claim_action_in(key, job.market, payer, due_at=job.time_end)


def claim_action_in(key: Pubkey, market: Pubkey, payer: Pubkey, *, due_at: int = 0) -> Action:
    return Action(
        kind=MaintenanceInstruction.CLAIM,
        account=key,
        reason=Reason.JOB_STOPPED,
        payer=payer,
        market=market,  # always the job's own market
        job=key,
        lamports=-RUN_RENT_LAMPORTS,
        due_at=due_at,
    )


@dataclass(frozen=True, slots=True)
class ClaimState:
    """The accounts re-read just before sending a claim.

    ``has_run`` comes from a fresh ``runs_of_job`` scan; ``market`` is the account at the
    action's market; ``stake`` the node's stake account.
    """

    job: JobView
    has_run: bool
    market: MarketView
    stake: StakeView


def recheck(action: Action, fresh: ClaimState, params: StoppedJobsParams) -> Reason | None:
    """Re-judge a claim on accounts re-read just before sending. None: still send."""
    if action.kind is not MaintenanceInstruction.CLAIM:
        raise ValueError(f"stopped_jobs cannot recheck a {action.kind} action")
    job = fresh.job
    reason = job_verdict(job, has_run=fresh.has_run, params=params)
    if reason is not None:
        return reason
    if not isinstance(job, JobAccount) or params.identity is None:  # narrowed by job_verdict
        return Reason.STATE_CHANGED
    if job.market != action.market:
        return Reason.MARKET_MISMATCH
    verdict = claim_verdict(fresh.market, fresh.stake, params.identity)
    return None if verdict is Reason.JOB_STOPPED else verdict
