"""The jobs every task leaves alone, counted by reason; orphans named.

Nothing here is ever sent. Reasons are exclusive, one per job:

- the account is gone (ALREADY_CLOSED) or is not a job (UNDECODABLE);
- a legacy 232-byte job (LEGACY_LAYOUT): the program cannot load it;
- a state byte the program does not write (UNKNOWN_STATE);
- a Queued job with a run (JOB_RUNNING), or waiting in its market's queue (QUEUED);
- a Queued job with no run in no queue (ORPHAN): after a ``quitAdmin``, in a market whose
  ``job_type`` is 255 (a listed job is never queued there), or whose market is gone.

Done and Stopped jobs of the current layout are the tasks' work, not counted here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from keeper.program.layouts import JobAccount, MarketAccount
from keeper.program.state import JobState
from keeper.tasks.plan import Plan, PlanBuilder, Reason, Task
from keeper.tasks.views import Absent, Foreign, require

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Mapping

    from solders.pubkey import Pubkey

    from keeper.tasks.views import JobView, MarketView

# In a market whose job_type is 255 a listed job is never queued (program-facts.md).
UNQUEUED_JOB_TYPE: Final = 255


def classify_job(view: JobView) -> Reason | None:
    """Why a job is left alone by every task, or None for a Done/Stopped job (task work).

    QUEUED stands for any state-0 job; ``census`` splits it into running/queued/orphan.
    """
    if isinstance(view, Absent):
        return Reason.ALREADY_CLOSED
    if isinstance(view, Foreign):
        return Reason.UNDECODABLE
    if view.is_legacy:
        return Reason.LEGACY_LAYOUT
    state = JobState.from_byte(view.state)
    if state is None:
        return Reason.UNKNOWN_STATE
    if state is JobState.QUEUED:
        return Reason.QUEUED
    return None


def queued_jobs(market: MarketView) -> frozenset[Pubkey]:
    """The jobs waiting in a live market's queue: the first ``length`` entries only.

    ``decode_market`` reads exactly ``length`` entries (the tail holds stale keys). A market
    whose ``job_type`` is 255 never queues a listed job; a gone or foreign market queues none.
    """
    if not isinstance(market, MarketAccount) or market.job_type == UNQUEUED_JOB_TYPE:
        return frozenset()
    if market.queue is None:  # only its terms were read: an empty queue would be a lie
        raise ValueError("the census needs the market's queue: read the whole market")
    return frozenset(market.queue)


def census(
    jobs: Iterable[tuple[Pubkey, JobView]],
    *,
    jobs_with_runs: Collection[Pubkey],
    markets: Mapping[Pubkey, MarketView],
) -> Plan:
    """Count the left-alone jobs among ``jobs``; ``markets`` must hold every queued job's market."""
    plan = PlanBuilder(Task.CENSUS)
    queues: dict[Pubkey, frozenset[Pubkey]] = {}
    for key, view in jobs:
        reason = classify_job(view)
        if reason is None:
            continue
        if reason is not Reason.QUEUED or not isinstance(view, JobAccount):
            plan.skip(reason)
        elif key in jobs_with_runs:
            plan.skip(Reason.JOB_RUNNING)
        else:
            if view.market not in queues:
                queues[view.market] = queued_jobs(require(markets, view.market, "market"))
            if key in queues[view.market]:
                plan.skip(Reason.QUEUED)
            else:
                plan.orphan(key)
    return plan.build()


def queued_census(
    queued: Iterable[tuple[Pubkey, Pubkey]],
    *,
    jobs_with_runs: Collection[Pubkey],
    markets: Mapping[Pubkey, MarketView],
) -> Plan:
    """``census`` for the rows of a full read: ``(job, its market)`` of each current-layout
    Queued job. ``markets`` must hold each of their markets (``ABSENT`` when gone)."""
    plan = PlanBuilder(Task.CENSUS)
    queues: dict[Pubkey, frozenset[Pubkey]] = {}
    for key, market in queued:
        if key in jobs_with_runs:
            plan.skip(Reason.JOB_RUNNING)
            continue
        if market not in queues:
            queues[market] = queued_jobs(require(markets, market, "market"))
        if key in queues[market]:
            plan.skip(Reason.QUEUED)
        else:
            plan.orphan(key)
    return plan.build()
