"""What a task decided: actions to send and skips counted, each with a Reason.

A Reason's value is the one word that appears in logs, in dry-run output and as the
metric label, identically.

A plan is bounded: it keeps at most ``limit`` actions, those due first (by ``due_at``, on
chain time, then by target address so the choice is the same on every replica and every
run), and counts the rest as *waiting*, by reason, with the lamports they hold. Memory
follows the limit, not the backlog.
"""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Final

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Iterable

    import numpy.typing as npt
    from solders.pubkey import Pubkey

    from keeper.program.instructions import MaintenanceInstruction


class Task(StrEnum):
    EXPIRED_RUNS = "expired_runs"
    STOPPED_JOBS = "stopped_jobs"
    FINISHED_JOBS = "finished_jobs"
    CENSUS = "census"  # jobs left alone (legacy, queued, orphans): counted, never touched


class Reason(StrEnum):
    # Why an action is sent.
    RUN_TIMED_OUT = "run_timed_out"  # chain time > run.time + job.timeout + grace
    RUN_JOB_MISSING = "run_job_missing"  # the run's job account no longer exists
    RUN_JOB_DONE = "run_job_done"  # the run's job is Done: could pay out twice
    JOB_STOPPED = "job_stopped"  # a Stopped job with no run: claim it
    JOB_EXPIRED = "job_expired"  # market.job_expiration < now - job.time_end
    MARKET_GONE = "market_gone"  # a Done job whose market account no longer exists
    # Why something is left alone.
    NOT_ADMIN = "not_admin"  # the keypair is not MARKET_ADMIN: admin instructions would fail
    RUN_NOT_TIMED_OUT = "run_not_timed_out"
    JOB_RUNNING = "job_running"  # the job already has a run: never claim it
    STAKE_TOO_LOW = "stake_too_low"  # the node's xNOS is below the market minimum
    STAKE_MISSING = "stake_missing"  # no stake account of the node authority: claim would fail
    CLAIM_DISABLED = "claim_disabled"
    MARKET_MISSING = "market_missing"  # a Stopped job whose market is gone: claim would fail
    NOT_EXPIRED = "not_expired"
    LEGACY_LAYOUT = "legacy_layout"  # 232-byte job: the program cannot load it
    QUEUED = "queued"
    UNKNOWN_STATE = "unknown_state"  # a state byte the program does not write
    UNDECODABLE = "undecodable"
    MARKET_INVALID = "market_invalid"  # an account at the market address that is not a market
    ORPHAN = "orphan"  # Queued, no run, in no market queue: reported, never touched
    ALREADY_CLOSED = "already_closed"  # another keeper got there first (3012)
    ALREADY_CLAIMED = "already_claimed"  # this claim's run exists: an earlier send landed
    STATE_CHANGED = "state_changed"  # the re-read before sending no longer qualifies
    MARKET_MISMATCH = "market_mismatch"  # job.market != the action's market: a bug, refused
    CLOCK_AHEAD = "clock_ahead"  # time-based, and chain time leads the local clock: withheld
    VERIFY_DISAGREES = "verify_disagrees"  # a verify endpoint judges it otherwise: withheld
    VERIFY_UNAVAILABLE = "verify_unavailable"  # a verify endpoint did not answer: withheld


ACTION_REASONS = frozenset(
    {
        Reason.RUN_TIMED_OUT,
        Reason.RUN_JOB_MISSING,
        Reason.RUN_JOB_DONE,
        Reason.JOB_STOPPED,
        Reason.JOB_EXPIRED,
        Reason.MARKET_GONE,
    }
)


# The reasons each task acts for (its backlog's labels).
TASK_ACTION_REASONS: Final[dict[Task, tuple[Reason, ...]]] = {
    Task.EXPIRED_RUNS: (Reason.RUN_TIMED_OUT, Reason.RUN_JOB_MISSING, Reason.RUN_JOB_DONE),
    Task.STOPPED_JOBS: (Reason.JOB_STOPPED,),
    Task.FINISHED_JOBS: (Reason.JOB_EXPIRED, Reason.MARKET_GONE),
    Task.CENSUS: (),
}


@dataclass(frozen=True, slots=True)
class Action:
    """One instruction to send.

    ``account`` is what the action resolves (its *target*): the job for clean/cleanAdmin/
    claim, the run for quitAdmin. ``job`` is the job concerned (the target itself for job
    actions, the run's job for quitAdmin). ``market`` is the job's own market for clean,
    claim and cleanAdmin (for cleanAdmin: the market that is gone); for quitAdmin, the
    run's job's market when the job exists (reported only: quitAdmin does not load it).
    ``payer`` is the payer account of the instruction: the refund recipient for
    clean/cleanAdmin/quitAdmin, the keeper's fee payer for claim. ``lamports`` is what
    closing returns to ``payer`` (negative for claim: it pays the new run's rent).
    ``due_at`` is the chain time from which the action was due (``time_end +
    job_expiration`` for a clean): a bounded plan keeps the earliest due.
    """

    kind: MaintenanceInstruction
    account: Pubkey
    reason: Reason
    payer: Pubkey
    market: Pubkey | None = None
    job: Pubkey | None = None
    lamports: int = 0
    due_at: int = 0

    def order(self) -> tuple[int, bytes]:
        """The order a bounded plan keeps actions in: due first, then by target address."""
        return self.due_at, bytes(self.account)


@dataclass(frozen=True, slots=True)
class Plan:
    """``actions``: what to send, due first. ``waiting``: actions due but beyond the
    plan's limit, by reason, and ``waiting_lamports`` what they hold (the backlog)."""

    task: Task
    actions: tuple[Action, ...] = ()
    skips: Counter[Reason] = field(default_factory=Counter)
    orphans: tuple[Pubkey, ...] = ()
    waiting: Counter[Reason] = field(default_factory=Counter)
    waiting_lamports: Counter[Reason] = field(default_factory=Counter)

    @property
    def due(self) -> int:
        """Every action found due: those planned and those waiting."""
        return len(self.actions) + sum(self.waiting.values())

    def merge(self, other: Plan, limit: int | None = None) -> Plan:
        if other.task != self.task:
            raise ValueError("cannot merge plans of different tasks")
        return combine(self.task, (self, other), limit)


def combine(task: Task, plans: Iterable[Plan], limit: int | None = None) -> Plan:
    """Many plans of one task as one, kept to ``limit`` actions (due first) if given."""
    builder = PlanBuilder(task, limit=limit)
    for plan in plans:
        if plan.task != task:
            raise ValueError(f"cannot combine a {plan.task} plan into {task}")
        for action in plan.actions:
            builder.act(action)
        builder.skips.update(plan.skips)
        builder.orphans.extend(plan.orphans)
        builder.waiting.update(plan.waiting)
        builder.waiting_lamports.update(plan.waiting_lamports)
    return builder.build()


_INVERT: Final = bytes(255 - value for value in range(256))


def _heap_entry(action: Action) -> tuple[int, bytes, Action]:
    """Largest (due_at, account) first on Python's min-heap: both parts negated."""
    return -action.due_at, bytes(action.account).translate(_INVERT), action


@dataclass(slots=True)
class PlanBuilder:
    """Accumulates one task's decisions; ``build`` freezes them into a Plan.

    With a ``limit``, at most that many actions are held: a heap whose top is the latest
    due kept, so an earlier one replaces it and the one pushed out is counted waiting.
    """

    task: Task
    limit: int | None = None
    skips: Counter[Reason] = field(default_factory=Counter)
    orphans: list[Pubkey] = field(default_factory=list)
    waiting: Counter[Reason] = field(default_factory=Counter)
    waiting_lamports: Counter[Reason] = field(default_factory=Counter)
    _heap: list[tuple[int, bytes, Action]] = field(default_factory=list)
    _targets: set[Pubkey] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"a plan's limit must be at least 1, not {self.limit}")

    @property
    def actions(self) -> list[Action]:
        """The actions held, due first."""
        return sorted((entry[2] for entry in self._heap), key=Action.order)

    def act(self, action: Action) -> None:
        """Plan ``action``; beyond the limit, the latest due of all held waits instead.

        A second action on a target already held is dropped: one account, one action.
        """
        if action.reason not in ACTION_REASONS:
            raise ValueError(f"{action.reason} is not a reason to act")
        if action.account in self._targets:
            return
        entry = _heap_entry(action)
        if self.limit is None or len(self._heap) < self.limit:
            heapq.heappush(self._heap, entry)
            self._targets.add(action.account)
            return
        if entry[:2] <= self._heap[0][:2]:  # due no earlier than every action held
            self._wait(action)
            return
        out = heapq.heapreplace(self._heap, entry)[2]
        self._targets.discard(out.account)
        self._targets.add(action.account)
        self._wait(out)

    def admits(self, due_at: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """Which of these due times could still enter the plan (a batch's pre-filter: the
        rest may be counted with ``wait`` without building an Action each)."""
        if self.limit is None or len(self._heap) < self.limit:
            return np.ones(len(due_at), dtype=np.bool_)
        latest = -self._heap[0][0]
        return np.asarray(due_at <= latest, dtype=np.bool_)

    def wait(self, reason: Reason, count: int, lamports: int) -> None:
        """``count`` due actions, holding ``lamports`` in all, that this plan will not send."""
        if reason not in ACTION_REASONS:
            raise ValueError(f"{reason} is not a reason to act")
        if count:
            self.waiting[reason] += count
            self.waiting_lamports[reason] += lamports

    def _wait(self, action: Action) -> None:
        self.wait(action.reason, 1, action.lamports)

    def skip(self, reason: Reason, count: int = 1) -> None:
        if reason in ACTION_REASONS:
            raise ValueError(f"{reason} is a reason to act, not to skip")
        if count:
            self.skips[reason] += count

    def orphan(self, job: Pubkey) -> None:
        self.orphans.append(job)
        self.skips[Reason.ORPHAN] += 1

    def build(self) -> Plan:
        return Plan(
            task=self.task,
            actions=tuple(self.actions),
            skips=+self.skips,
            orphans=tuple(self.orphans),
            waiting=+self.waiting,
            waiting_lamports=Counter(
                {reason: self.waiting_lamports[reason] for reason in self.waiting}
            ),
        )
