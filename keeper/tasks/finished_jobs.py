"""Finished jobs: close Done jobs (state 2) with ``clean`` or ``cleanAdmin``.

- ``clean`` (anyone may send it), always with the job's own market, when that market is
  live and ``market.job_expiration < now - job.time_end`` (strict) -> JOB_EXPIRED;
- ``cleanAdmin`` only when the keypair is the market admin and the job's market account
  no longer exists -> MARKET_GONE. Never for a job that is not Done: a Queued or Stopped
  job may still have its deposit in the market vault.

Two ways in: ``decide_market`` judges a numpy batch of sliced records from one market's
scan without building an object per job (only due jobs become Actions); ``decide_jobs``
judges fully decoded accounts. ``recheck`` re-judges an action on the full account
re-read just before sending. ``now`` is chain time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import numpy as np
from solders.pubkey import Pubkey

from keeper.program.instructions import MaintenanceInstruction
from keeper.program.layouts import JOB_RENT_LAMPORTS, JobAccount, MarketAccount
from keeper.program.state import JobState
from keeper.tasks.census import classify_job
from keeper.tasks.plan import ACTION_REASONS, Action, Plan, PlanBuilder, Reason, Task
from keeper.tasks.views import Absent, Foreign, require

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    import numpy.typing as npt

    from keeper.program.batch import StructArray
    from keeper.tasks.views import JobView, MarketView

_INT64_MIN: Final = int(np.iinfo(np.int64).min)
_INT64_MAX: Final = int(np.iinfo(np.int64).max)
_RECORD_FIELDS: Final = ("payer", "state", "time_end")

_KIND_FOR: Final = {
    Reason.JOB_EXPIRED: MaintenanceInstruction.CLEAN,
    Reason.MARKET_GONE: MaintenanceInstruction.CLEAN_ADMIN,
}


@dataclass(frozen=True, slots=True)
class FinishedJobsParams:
    """``is_admin``: the keypair is MARKET_ADMIN (``cleanAdmin`` needs it; ``clean`` does not)."""

    is_admin: bool


def is_expired(job_expiration: int, time_end: int, now: int) -> bool:
    """The program's rule, strict: ``market.job_expiration < now - job.time_end``."""
    return job_expiration < now - time_end


def expired_mask(
    time_end: npt.NDArray[np.int64], job_expiration: int, now: int
) -> npt.NDArray[np.bool_]:
    """``is_expired`` over a column, without int64 overflow.

    ``job_expiration < now - time_end`` is ``time_end < now - job_expiration``; the right
    side is computed in Python ints and compared only when it fits an int64.
    """
    threshold = now - job_expiration
    if threshold > _INT64_MAX:
        return np.ones(time_end.shape, dtype=np.bool_)
    if threshold <= _INT64_MIN:
        return np.zeros(time_end.shape, dtype=np.bool_)
    return np.asarray(time_end < np.int64(threshold), dtype=np.bool_)


def market_verdict(
    time_end: int, market: MarketView, now: int, params: FinishedJobsParams
) -> Reason:
    """For a Done job of the current layout: act (JOB_EXPIRED/MARKET_GONE) or why not."""
    if isinstance(market, Foreign):
        return Reason.MARKET_INVALID  # something else lives at the address: touch nothing
    if not isinstance(market, MarketAccount):  # ABSENT: the market is gone
        return Reason.MARKET_GONE if params.is_admin else Reason.NOT_ADMIN
    if is_expired(market.job_expiration, time_end, now):
        return Reason.JOB_EXPIRED
    return Reason.NOT_EXPIRED


def due_at(time_end: int, market: MarketView) -> int:
    """From when a Done job is due: its market's expiry after ``time_end``, or its end when
    the market is gone (when it went is unknown), held within int64 like the batch path."""
    expiration = market.job_expiration if isinstance(market, MarketAccount) else 0
    return max(_INT64_MIN, min(_INT64_MAX, time_end + expiration))


def verdict(job: JobView, market: MarketView, now: int, params: FinishedJobsParams) -> Reason:
    """For a fully decoded job: act (JOB_EXPIRED/MARKET_GONE) or why not."""
    left_alone = classify_job(job)
    if left_alone is not None:
        return left_alone
    if not isinstance(job, JobAccount) or job.state != JobState.DONE:
        return Reason.STATE_CHANGED  # Stopped: not this task's work (and never cleanAdmin)
    return market_verdict(job.time_end, market, now, params)


def close_action(  # noqa: PLR0913 - the action's own fields
    job_key: Pubkey,
    *,
    payer: Pubkey,
    market: Pubkey,
    reason: Reason,
    lamports: int,
    due_at: int = 0,
) -> Action:
    return Action(
        kind=_KIND_FOR[reason],
        account=job_key,
        reason=reason,
        payer=payer,
        market=market,  # the job's own market: clean's account, cleanAdmin's gone market
        job=job_key,
        lamports=lamports,
        due_at=due_at,
    )


def decide_jobs(
    jobs: Iterable[tuple[Pubkey, JobView]],
    *,
    markets: Mapping[Pubkey, MarketView],
    now: int,
    params: FinishedJobsParams,
    lamports: Mapping[Pubkey, int] | None = None,
) -> Plan:
    """Judge fully decoded jobs. ``markets`` must hold a view of every Done job's market."""
    plan = PlanBuilder(Task.FINISHED_JOBS)
    for key, job in jobs:
        reason = classify_job(job)
        if reason is None and isinstance(job, JobAccount):
            market = require(markets, job.market, "market")
            reason = verdict(job, market, now, params)
        if reason in ACTION_REASONS and isinstance(job, JobAccount):
            refund = JOB_RENT_LAMPORTS if lamports is None else lamports.get(key, JOB_RENT_LAMPORTS)
            plan.act(
                close_action(
                    key,
                    payer=job.payer,
                    market=job.market,
                    reason=reason,
                    lamports=refund,
                    due_at=due_at(job.time_end, markets[job.market]),
                )
            )
        elif reason is not None:
            plan.skip(reason)
    return plan.build()


def decide_market(  # noqa: PLR0913 - one market's batch: records, keys, market, time, policy
    records: StructArray,
    keys: npt.NDArray[np.uint8] | Sequence[bytes],
    *,
    market_key: Pubkey,
    market: MarketView,
    now: int,
    params: FinishedJobsParams,
    lamports: npt.NDArray[np.integer] | None = None,
    limit: int | None = None,
) -> Plan:
    """``judge_market`` into a plan of its own (at most ``limit`` actions)."""
    plan = PlanBuilder(Task.FINISHED_JOBS, limit=limit)
    judge_market(
        plan,
        records,
        keys,
        market_key=market_key,
        market=market,
        now=now,
        params=params,
        lamports=lamports,
    )
    return plan.build()


def judge_market(  # noqa: PLR0913 - one market's batch: records, keys, market, time, policy
    plan: PlanBuilder,
    records: StructArray,
    keys: npt.NDArray[np.uint8] | Sequence[bytes],
    *,
    market_key: Pubkey,
    market: MarketView,
    now: int,
    params: FinishedJobsParams,
    lamports: npt.NDArray[np.integer] | None = None,
) -> None:
    """Judge one market's Done jobs from a batch, into ``plan``.

    ``records``: ``batch.decode_jobs(buffer, DONE_JOB_SLICE)`` (fields payer, state,
    time_end; a wider slice may add ``market``, and rows of another market are refused) of
    the jobs of ``market_key`` of the 240-byte layout; ``keys``: the job addresses in the
    same order, an ``(n, 32)`` uint8 array or a sequence of 32-byte strings; ``lamports``:
    the accounts' balances when known. No object is built per job: due jobs the plan can
    no longer hold (it keeps the earliest due) are only counted, and only those it may
    keep become Actions.
    """
    count = len(records)
    _check_batch(records, keys, lamports, count)
    states = records["state"]
    done = states == JobState.DONE
    _count_not_done(plan, states, done)
    own = _of_market(records, market_key)
    plan.skip(Reason.MARKET_MISMATCH, int(np.count_nonzero(done & ~own)))
    done &= own
    if isinstance(market, MarketAccount):
        due = done & expired_mask(records["time_end"], market.job_expiration, now)
        plan.skip(Reason.NOT_EXPIRED, int(np.count_nonzero(done)) - int(np.count_nonzero(due)))
        reason = Reason.JOB_EXPIRED
        expiration = market.job_expiration
    else:
        due = done
        reason = market_verdict(0, market, now, params)  # time_end is irrelevant here
        if reason not in ACTION_REASONS:
            plan.skip(reason, int(np.count_nonzero(done)))
            return
        expiration = 0  # gone: due since it ended, at the latest (when it went is unknown)
    rows = np.flatnonzero(due)
    due_at = saturating_add(records["time_end"][rows], expiration)
    refunds = (
        np.full(len(rows), JOB_RENT_LAMPORTS, dtype=np.int64)
        if lamports is None
        else np.asarray(lamports[rows], dtype=np.int64)
    )
    admitted = plan.admits(due_at)
    plan.wait(reason, int(np.count_nonzero(~admitted)), int(refunds[~admitted].sum()))
    payers = records["payer"]
    for index, at, refund in zip(
        rows[admitted].tolist(),
        due_at[admitted].tolist(),
        refunds[admitted].tolist(),
        strict=True,
    ):
        plan.act(
            close_action(
                Pubkey.from_bytes(_key_bytes(keys, index)),
                payer=Pubkey.from_bytes(payers[index].tobytes()),
                market=market_key,
                reason=reason,
                lamports=refund,
                due_at=at,
            )
        )


def judge_upcoming(  # noqa: PLR0913 - one market's batch: records, keys, market, time
    plan: PlanBuilder,
    records: StructArray,
    keys: npt.NDArray[np.uint8] | Sequence[bytes],
    *,
    market_key: Pubkey,
    market: MarketView,
    now: int,
) -> None:
    """The Done jobs of one live market that are *not yet* expired at ``now``, as the
    clean each will need, into ``plan`` (bounded: it keeps the earliest due and counts the
    rest as waiting). Live mode files them for their due time, so a job seen only by a
    full read is cleaned when it expires without another read."""
    if not isinstance(market, MarketAccount) or not len(records):
        return
    done = (records["state"] == JobState.DONE) & _of_market(records, market_key)
    done &= ~expired_mask(records["time_end"], market.job_expiration, now)
    rows = np.flatnonzero(done)
    due_at = saturating_add(records["time_end"][rows], market.job_expiration)
    admitted = plan.admits(due_at)
    left_out = int(np.count_nonzero(~admitted))
    plan.wait(Reason.JOB_EXPIRED, left_out, left_out * JOB_RENT_LAMPORTS)
    payers = records["payer"]
    for index, at in zip(rows[admitted].tolist(), due_at[admitted].tolist(), strict=True):
        plan.act(
            close_action(
                Pubkey.from_bytes(_key_bytes(keys, index)),
                payer=Pubkey.from_bytes(payers[index].tobytes()),
                market=market_key,
                reason=Reason.JOB_EXPIRED,
                lamports=JOB_RENT_LAMPORTS,
                due_at=at,
            )
        )


def saturating_add(column: npt.NDArray[np.int64], value: int) -> npt.NDArray[np.int64]:
    """``column + value`` in int64, held at the int64 bounds instead of wrapping."""
    column = np.asarray(column, dtype=np.int64)
    value = max(_INT64_MIN, min(_INT64_MAX, value))
    if value >= 0:
        return np.minimum(column, np.int64(_INT64_MAX - value)) + np.int64(value)
    return np.maximum(column, np.int64(_INT64_MIN - value)) + np.int64(value)


def _check_batch(
    records: StructArray,
    keys: npt.NDArray[np.uint8] | Sequence[bytes],
    lamports: npt.NDArray[np.integer] | None,
    count: int,
) -> None:
    names = records.dtype.names or ()
    missing = [name for name in _RECORD_FIELDS if name not in names]
    if missing:
        raise ValueError(f"records lack {missing}: decode them with DONE_JOB_SLICE or wider")
    if len(keys) != count or (lamports is not None and len(lamports) != count):
        raise ValueError(f"{count} records but {len(keys)} keys")


def _count_not_done(
    plan: PlanBuilder, states: npt.NDArray[np.uint8], done: npt.NDArray[np.bool_]
) -> None:
    """Rows the Done filter should not have returned: count them, never act on them."""
    known = np.isin(states, [JobState.QUEUED, JobState.STOPPED])
    plan.skip(Reason.STATE_CHANGED, int(np.count_nonzero(known)))
    plan.skip(Reason.UNKNOWN_STATE, int(np.count_nonzero(~known & ~done)))


def _of_market(records: StructArray, market_key: Pubkey) -> npt.NDArray[np.bool_]:
    """Rows of ``market_key``. Records from a wider slice carry the market field: rows of
    another market are refused (``clean`` always goes with the job's own market).
    Otherwise the scan's market filter vouches for every row."""
    if "market" not in (records.dtype.names or ()):
        return np.ones(len(records), dtype=np.bool_)
    return np.asarray(records["market"] == np.void(bytes(market_key)), dtype=np.bool_)


def _key_bytes(keys: npt.NDArray[np.uint8] | Sequence[bytes], index: int) -> bytes:
    if isinstance(keys, np.ndarray):
        return bytes(keys[index].tobytes())
    return bytes(keys[index])


def recheck(
    action: Action, job: JobView, market: MarketView, now: int, params: FinishedJobsParams
) -> Reason | None:
    """Re-judge a clean/cleanAdmin on the full job and its market, re-read before sending.

    None: still send. The job must still be Done, of the current layout, with the action's
    payer and market (any other market is a bug: MARKET_MISMATCH); a clean must still be
    expired by the market's current ``job_expiration``; a cleanAdmin's market still gone.
    """
    if _KIND_FOR.get(action.reason) is not action.kind or action.market is None:
        raise ValueError(f"finished_jobs cannot recheck {action.kind}/{action.reason} action")
    reason = classify_job(job)
    if reason is not None:
        return reason
    if not isinstance(job, JobAccount) or job.state != JobState.DONE:
        return Reason.STATE_CHANGED
    if job.market != action.market:
        return Reason.MARKET_MISMATCH
    if job.payer != action.payer:
        return Reason.STATE_CHANGED
    gone = isinstance(market, Absent)
    if not isinstance(market, Foreign) and gone != (
        action.kind is MaintenanceInstruction.CLEAN_ADMIN
    ):
        return Reason.STATE_CHANGED  # the market vanished (clean) or is back (cleanAdmin)
    reason = market_verdict(job.time_end, market, now, params)
    return None if reason in ACTION_REASONS else reason
