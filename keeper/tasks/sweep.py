"""One read of every job, judged for every task at once: the pass's shared snapshot.

A full pass streams the JobAccounts once (``batch.JOB_READ_SLICE``) and hands each batch
to a ``JobSweep``, which keeps only what the tasks of the pass need: finished jobs go
straight into their bounded plan (nothing per job is held beyond it), Stopped jobs and
Queued jobs (the census) as (job, market) rows, the rest as counts. A batch is any run of
jobs: the rows of one getProgramAccounts chunk, or a single account a live feed
delivers. ``markets`` must hold every market a batch's rows name before the batch is fed
(``missing_markets`` says which to fetch): an unfetched market is never taken for gone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from solders.pubkey import Pubkey

from keeper.program.state import JobState
from keeper.tasks import census, finished_jobs, stopped_jobs
from keeper.tasks.plan import Plan, PlanBuilder, Reason, Task, combine
from keeper.tasks.views import require

if TYPE_CHECKING:
    from collections.abc import Collection, MutableMapping

    import numpy.typing as npt

    from keeper.program.batch import StructArray
    from keeper.tasks.views import MarketView, StakeView

_KNOWN_STATES = (JobState.QUEUED, JobState.DONE, JobState.STOPPED)


@dataclass(frozen=True, slots=True)
class SweepParams:
    """What the pass decides: a task's params when it runs in this pass, else None."""

    now: int
    finished: finished_jobs.FinishedJobsParams | None = None
    stopped: stopped_jobs.StoppedJobsParams | None = None
    finished_limit: int | None = None
    stopped_limit: int | None = None
    upcoming_limit: int | None = None  # live mode: keep this many not-yet-due cleans


@dataclass(slots=True)
class JobSweep:
    """Fed batches of sliced jobs; ``finish`` turns them into the tasks' plans."""

    params: SweepParams
    markets: MutableMapping[Pubkey, MarketView]
    jobs: int = 0
    legacy: int = 0
    done: int = 0
    stopped: list[tuple[Pubkey, Pubkey, int]] = field(default_factory=list)
    queued: list[tuple[Pubkey, Pubkey]] = field(default_factory=list)
    _finished: PlanBuilder = field(init=False)
    _stopped_extra: PlanBuilder = field(init=False)
    _upcoming: PlanBuilder | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.params.upcoming_limit is not None:
            self._upcoming = PlanBuilder(Task.FINISHED_JOBS, limit=self.params.upcoming_limit)
        self._finished = PlanBuilder(Task.FINISHED_JOBS, limit=self.params.finished_limit)
        self._stopped_extra = PlanBuilder(Task.STOPPED_JOBS)

    def missing_markets(self, records: StructArray) -> list[Pubkey]:
        """Markets named by ``records`` that ``markets`` does not hold yet."""
        if not len(records):
            return []
        names = np.unique(records["market"])
        keys = (Pubkey.from_bytes(name.tobytes()) for name in names)
        return [key for key in keys if key not in self.markets]

    def undecodable(self, count: int) -> None:
        """Records of the wrong length: not judged, counted."""
        self.jobs += count
        # A census count (finished_jobs), as legacy and unknown-state jobs are: counted by one
        # task only, so a summary that adds the tasks up counts each account once.
        self._finished.skip(Reason.UNDECODABLE, count)

    def feed(
        self,
        keys: npt.NDArray[np.uint8],
        records: StructArray,
        legacy: npt.NDArray[np.bool_],
    ) -> None:
        """One batch: ``keys`` (n, 32), ``records`` decoded with ``JOB_READ_SLICE``,
        ``legacy`` True for 232-byte jobs (the program cannot load them: never acted on)."""
        states = records["state"]
        current = ~legacy
        self.jobs += len(records)
        self.legacy += int(np.count_nonzero(legacy))
        done = current & (states == JobState.DONE)
        self.done += int(np.count_nonzero(done))
        if self.params.finished is not None:
            self._judge_done(keys, records, done)
            unknown = current & ~np.isin(states, _KNOWN_STATES)
            self._finished.skip(Reason.UNKNOWN_STATE, int(np.count_nonzero(unknown)))
            # Legacy Stopped jobs are the stopped task's count when it runs: once each.
            counted_elsewhere = states == JobState.STOPPED if self.params.stopped else False
            legacy_here = legacy & ~counted_elsewhere
            self._finished.skip(Reason.LEGACY_LAYOUT, int(np.count_nonzero(legacy_here)))
            for row in np.flatnonzero(current & (states == JobState.QUEUED)).tolist():
                self.queued.append((_key(keys, row), _market(records, row)))
        if self.params.stopped is not None:
            stopped = states == JobState.STOPPED
            self._stopped_extra.skip(Reason.LEGACY_LAYOUT, int(np.count_nonzero(stopped & legacy)))
            time_end = records["time_end"]
            for row in np.flatnonzero(stopped & current).tolist():
                self.stopped.append((_key(keys, row), _market(records, row), int(time_end[row])))

    def _judge_done(
        self, keys: npt.NDArray[np.uint8], records: StructArray, done: npt.NDArray[np.bool_]
    ) -> None:
        """Done rows, one market at a time (each market's expiration judges its jobs)."""
        params = self.params.finished
        assert params is not None
        rows = np.flatnonzero(done)
        if not len(rows):
            return
        names, group = np.unique(records["market"][rows], return_inverse=True)
        order = np.argsort(group, kind="stable")
        bounds = np.concatenate(([0], np.cumsum(np.bincount(group, minlength=len(names)))))
        for index, name in enumerate(names):
            mine = rows[order[bounds[index] : bounds[index + 1]]]
            market_key = Pubkey.from_bytes(name.tobytes())
            finished_jobs.judge_market(
                self._finished,
                records[mine],
                keys[mine],
                market_key=market_key,
                market=require(self.markets, market_key, "market"),
                now=self.params.now,
                params=params,
            )
            if self._upcoming is not None:
                finished_jobs.judge_upcoming(
                    self._upcoming,
                    records[mine],
                    keys[mine],
                    market_key=market_key,
                    market=require(self.markets, market_key, "market"),
                    now=self.params.now,
                )

    def upcoming_plan(self) -> Plan | None:
        """The not-yet-due cleans kept (``upcoming_limit``, earliest due first; the rest
        are its ``waiting``), or None when not asked for."""
        return None if self._upcoming is None else self._upcoming.build()

    def queued_markets_missing(self) -> list[Pubkey]:
        """Markets of Queued jobs not held yet (the census reads their queues)."""
        return list({market for _job, market in self.queued} - self.markets.keys())

    def finished_plan(self, *, jobs_with_runs: Collection[Pubkey]) -> Plan:
        """Finished jobs' plan, with the census of every job (legacy, odd states, orphans)."""
        orphans = census.queued_census(
            self.queued, jobs_with_runs=jobs_with_runs, markets=self.markets
        )
        self._finished.orphans.extend(orphans.orphans)
        for reason, count in orphans.skips.items():  # job_running, queued, orphan: once each
            self._finished.skip(reason, count)
        return self._finished.build()

    def stopped_plan(self, *, jobs_with_runs: Collection[Pubkey], stake: StakeView) -> Plan:
        params = self.params.stopped
        assert params is not None
        plan = stopped_jobs.decide_stopped(
            self.stopped,
            jobs_with_runs=jobs_with_runs,
            markets=self.markets,
            params=params,
            stake=stake,
            limit=self.params.stopped_limit,
        )
        return combine(
            Task.STOPPED_JOBS, (plan, self._stopped_extra.build()), self.params.stopped_limit
        )

    def stopped_markets_missing(self) -> list[Pubkey]:
        return list({market for _job, market, _end in self.stopped} - self.markets.keys())


def _key(keys: npt.NDArray[np.uint8], row: int) -> Pubkey:
    return Pubkey.from_bytes(keys[row].tobytes())


def _market(records: StructArray, row: int) -> Pubkey:
    return Pubkey.from_bytes(records["market"][row].tobytes())
