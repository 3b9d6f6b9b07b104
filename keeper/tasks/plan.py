"""What a task decided: actions to send and skips counted, each with a Reason.

A Reason's value is the one word that appears in logs, in dry-run output and as the
metric label, identically.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

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


@dataclass(frozen=True, slots=True)
class Action:
    """One instruction to send.

    ``account`` is what the action resolves (its *target*): the job for clean/cleanAdmin/
    claim, the run for quitAdmin. ``job`` is the job concerned (the target itself for job
    actions, the run's job for quitAdmin). ``market`` is the job's own market for clean,
    claim and cleanAdmin (for cleanAdmin: the market that is gone). ``payer`` is the payer
    account of the instruction: the refund recipient for clean/cleanAdmin/quitAdmin, the
    keeper's fee payer for claim. ``lamports`` is what closing returns to ``payer``
    (negative for claim: it pays the new run's rent).
    """

    kind: MaintenanceInstruction
    account: Pubkey
    reason: Reason
    payer: Pubkey
    market: Pubkey | None = None
    job: Pubkey | None = None
    lamports: int = 0


@dataclass(frozen=True, slots=True)
class Plan:
    task: Task
    actions: tuple[Action, ...] = ()
    skips: Counter[Reason] = field(default_factory=Counter)
    orphans: tuple[Pubkey, ...] = ()

    def merge(self, other: Plan) -> Plan:
        if other.task != self.task:
            raise ValueError("cannot merge plans of different tasks")
        return Plan(
            task=self.task,
            actions=self.actions + other.actions,
            skips=self.skips + other.skips,
            orphans=self.orphans + other.orphans,
        )


def combine(task: Task, plans: Iterable[Plan]) -> Plan:
    """Many plans of one task as one, concatenated once (pairwise ``merge`` recopies)."""
    actions: list[Action] = []
    skips: Counter[Reason] = Counter()
    orphans: list[Pubkey] = []
    for plan in plans:
        if plan.task != task:
            raise ValueError(f"cannot combine a {plan.task} plan into {task}")
        actions.extend(plan.actions)
        skips.update(plan.skips)
        orphans.extend(plan.orphans)
    return Plan(task, tuple(actions), +skips, tuple(orphans))


@dataclass(slots=True)
class PlanBuilder:
    """Accumulates one task's decisions; ``build`` freezes them into a Plan."""

    task: Task
    actions: list[Action] = field(default_factory=list)
    skips: Counter[Reason] = field(default_factory=Counter)
    orphans: list[Pubkey] = field(default_factory=list)

    def act(self, action: Action) -> None:
        if action.reason not in ACTION_REASONS:
            raise ValueError(f"{action.reason} is not a reason to act")
        self.actions.append(action)

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
            skips=Counter(self.skips),
            orphans=tuple(self.orphans),
        )
