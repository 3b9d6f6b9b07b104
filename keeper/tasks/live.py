"""Live notifications judged by the tasks' own rules and filed for their due time.

Between full reads the live feed reports accounts one at a time. Each is judged with the
task's own decision (``finished_jobs.decide_jobs``, ``stopped_jobs.decide``,
``expired_runs.decide``) at the first chain second its rule holds — so the action filed
is exactly what a pass at that chain time would plan — and held in a ``DueSchedule``
until chain time reaches it. Nothing here reads a clock: ``now`` is always chain time.
Memory is bounded: at most ``capacity`` actions per task are held, the earliest due; the
rest are counted and left for a full read. ``horizon`` is the first chain second one of those may
fall due: before it the book holds every action it was told of.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from keeper.program.layouts import JobAccount, MarketAccount, RunAccount
from keeper.program.state import JobState
from keeper.tasks import expired_runs, finished_jobs, stopped_jobs
from keeper.tasks.plan import Action, Plan, Reason, Task
from keeper.tasks.schedule import DueSchedule, clean_due_at, quit_due_at
from keeper.tasks.views import ABSENT

if TYPE_CHECKING:
    from collections.abc import Mapping

    from solders.pubkey import Pubkey

    from keeper.tasks.views import JobView, MarketView, RunView, StakeView


@dataclass(frozen=True, slots=True)
class LiveParams:
    """The tasks followed live (a task's params when it is enabled, else None)."""

    finished: finished_jobs.FinishedJobsParams | None = None
    stopped: stopped_jobs.StoppedJobsParams | None = None
    expired: expired_runs.ExpiredRunsParams | None = None
    capacity: int = 100_000

    def __post_init__(self) -> None:
        if self.capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {self.capacity}")


@dataclass(slots=True)
class LiveBook:
    """Actions filed by due time (chain time), per task; ``pop_due`` hands out those due."""

    params: LiveParams
    overflow: Counter[Task] = field(default_factory=Counter)
    # The earliest chain second an action left out (a read's bound, or this book's) may
    # fall due; None: nothing left out since the last ``read_everything``.
    horizon: int | None = None
    skips: Counter[Reason] = field(default_factory=Counter)
    _schedules: dict[Task, DueSchedule[Pubkey]] = field(default_factory=dict)
    _actions: dict[Task, dict[Pubkey, Action]] = field(default_factory=dict)
    _run_of_job: dict[Pubkey, Pubkey] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for task in (Task.FINISHED_JOBS, Task.STOPPED_JOBS, Task.EXPIRED_RUNS):
            self._schedules[task] = DueSchedule()
            self._actions[task] = {}

    def sizes(self) -> dict[Task, int]:
        """Actions held, by task."""
        return {task: len(schedule) for task, schedule in self._schedules.items()}

    def due_at(self, task: Task, key: Pubkey) -> int | None:
        return self._schedules[task].due_at(key)

    def holds_everything_at(self, now: int) -> bool:
        """Whether every action due by chain time ``now`` that it was told of is held."""
        return self.horizon is None or now < self.horizon

    def read_everything(self) -> None:
        """A full read saw every account: what it leaves out sets the horizon anew."""
        self.horizon = None

    def next_due(self) -> int | None:
        dues = [d for s in self._schedules.values() if (d := s.next_due()) is not None]
        return min(dues, default=None)

    # -- what the feed reports -----------------------------------------------------------

    def job_changed(  # noqa: PLR0913 - the job, what judges it, and when
        self,
        key: Pubkey,
        job: JobView,
        *,
        markets: Mapping[Pubkey, MarketView],
        now: int,
        stake: StakeView = ABSENT,
        lamports: int | None = None,
    ) -> None:
        """A job was written. Done: its clean (or cleanAdmin) is filed for when it falls
        due; Stopped: its claim is judged at once. ``markets`` must hold the job's market
        when it is Done or Stopped (``ABSENT`` when gone)."""
        self._forget(Task.FINISHED_JOBS, key)
        self._forget(Task.STOPPED_JOBS, key)
        if not isinstance(job, JobAccount):
            return
        if job.state in (JobState.DONE, JobState.STOPPED):
            # Finishing or quitting closes the job's run in the same instruction: a quit
            # filed for it would find nothing (a run left open is the full read's to find).
            self._forget_run_of(key)
        refunds = None if lamports is None else {key: lamports}
        if job.state == JobState.DONE and self.params.finished is not None:
            market = markets[job.market]
            due = (
                clean_due_at(job.time_end, market.job_expiration)
                if isinstance(market, MarketAccount)
                else now  # the market is gone: cleanAdmin's rule holds at once
            )
            when = max(due, now)
            plan = finished_jobs.decide_jobs(
                [(key, job)],
                markets=markets,
                now=when,
                params=self.params.finished,
                lamports=refunds,
            )
            self._file_plan(Task.FINISHED_JOBS, plan, when)
        elif job.state == JobState.STOPPED and self.params.stopped is not None:
            # A Stopped job's run was just closed; the re-check before sending counts runs.
            plan = stopped_jobs.decide(
                [(key, job)],
                jobs_with_runs=(),
                markets=markets,
                params=self.params.stopped,
                stake=stake,
            )
            self._file_plan(Task.STOPPED_JOBS, plan, now)

    def run_changed(
        self,
        key: Pubkey,
        run: RunView,
        *,
        job: JobView,
        now: int,
        lamports: int | None = None,
    ) -> None:
        """A run was written: its quitAdmin is filed for ``run.time + job.timeout + grace``
        (strictly after), or for now when its job is Done or gone."""
        self._forget(Task.EXPIRED_RUNS, key)
        params = self.params.expired
        if not isinstance(run, RunAccount) or params is None:
            return
        when = now
        verdict = expired_runs.verdict(run, job, now, params.grace_seconds)
        if verdict is Reason.RUN_NOT_TIMED_OUT and isinstance(job, JobAccount):
            assert job.timeout is not None  # RUN_NOT_TIMED_OUT needs one
            when = max(now, quit_due_at(run.time, job.timeout, params.grace_seconds))
        plan = expired_runs.decide(
            [(key, run)],
            {run.job: job},
            when,
            params,
            lamports=None if lamports is None else {key: lamports},
        )
        self._file_plan(Task.EXPIRED_RUNS, plan, when)

    def read_upcoming(self, task: Task, plan: Plan) -> bool:
        """A read's not-yet-due actions of ``task`` (``discovery.FullRead.upcoming``), each
        filed for the first chain second its rule holds (``due_at + 1``: the rules are
        strict). True when some were left out: the plan's own bound (its waiting actions
        fall due no earlier than its latest kept), or this book's."""
        left_out = False
        for action in plan.actions:
            left_out |= not self._file(task, action, action.due_at + 1)
        if sum(plan.waiting.values()):
            left_out = True
            self._left_out_from(max((a.due_at + 1 for a in plan.actions), default=0))
        return left_out

    # -- what is due -----------------------------------------------------------------------

    def pop_due(self, task: Task, now: int, limit: int | None = None) -> list[tuple[Action, int]]:
        """``task``'s actions due at chain time ``now``, earliest first, with their due
        times; at most ``limit``. They are no longer held."""
        actions = self._actions[task]
        popped = self._schedules[task].pop_due(now, limit)
        out = [(actions.pop(key), due) for key, due in popped]
        for action, _due in out:
            self._unlink(task, action)
        return out

    # -- internals -------------------------------------------------------------------------

    def _file_plan(self, task: Task, plan: Plan, when: int) -> None:
        self.skips.update(plan.skips)
        for action in plan.actions:
            self._file(task, action, when)

    def _file(self, task: Task, action: Action, when: int) -> bool:
        schedule = self._schedules[task]
        if action.account not in schedule and len(schedule) >= self.params.capacity:
            # Full: the book keeps the earliest due, so the one due last gives way (or
            # this one, when it is due no earlier).
            latest = schedule.latest()
            self.overflow[task] += 1
            if latest is None or latest[1] <= when:
                self._left_out_from(when)
                return False
            self._forget(task, latest[0])
            self._left_out_from(latest[1])
        schedule.file(action.account, when)
        self._actions[task][action.account] = action
        if task is Task.EXPIRED_RUNS and action.job is not None:
            self._run_of_job[action.job] = action.account
        return True

    def _left_out_from(self, when: int) -> None:
        self.horizon = when if self.horizon is None else min(self.horizon, when)

    def _forget(self, task: Task, key: Pubkey) -> None:
        self._schedules[task].discard(key)
        action = self._actions[task].pop(key, None)
        if action is not None:
            self._unlink(task, action)

    def _unlink(self, task: Task, action: Action) -> None:
        job = action.job
        if task is not Task.EXPIRED_RUNS or job is None:
            return
        if self._run_of_job.get(job) == action.account:
            del self._run_of_job[job]

    def _forget_run_of(self, job: Pubkey) -> None:
        run = self._run_of_job.pop(job, None)
        if run is not None:
            self._forget(Task.EXPIRED_RUNS, run)
