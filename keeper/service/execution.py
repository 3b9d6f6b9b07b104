"""Carrying out a plan: dry-run output, or pack -> re-check -> guard -> send -> count.

Every batch re-reads its accounts just before sending (another keeper, an ``extend`` or
a new run may have changed them) and re-judges each action with the task's pure
``recheck``. Nothing outside the four maintenance instructions is ever signed: the
sender refuses anything ``program.instructions.allowed`` rejects.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import structlog
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from keeper.chain.accounts import get_balance
from keeper.chain.clock import chain_time
from keeper.chain.fees import recent_prioritization_fees
from keeper.chain.keypair import run_keypair
from keeper.chain.outcome import BatchResult, Fault, SendOutcome
from keeper.chain.scan import count_program_accounts
from keeper.chain.sender import Sender
from keeper.program import filters
from keeper.program.instructions import MaintenanceInstruction
from keeper.service import effects
from keeper.service.context import Identity
from keeper.service.discovery import Scope, job_views, market_terms, run_views, stake_of
from keeper.service.metrics import Metrics
from keeper.service.settings import Settings
from keeper.service.trust import Trust
from keeper.tasks import budget, expired_runs, finished_jobs, stopped_jobs
from keeper.tasks.batching import Batch, Signing, pack
from keeper.tasks.builders import instruction_for
from keeper.tasks.density import density_bound
from keeper.tasks.plan import Action, Plan, Reason
from keeper.tasks.views import ABSENT, JobView, require

log = structlog.get_logger("keeper")

# The skip reason of actions the pass deadline left unsent (schedule.pass_deadline_seconds).
DEADLINE_REASON: Final = "pass_deadline"

# A batch is rebuilt at most this often in one pass (after expiry or a competitor close).
SEND_ATTEMPTS = 3

T = TypeVar("T")


class _Late:
    """What ``_by`` returns when the deadline came first."""


LATE: Final = _Late()


async def _by(deadline: float | None, work: Coroutine[Any, Any, T]) -> T | _Late:
    """``work``'s result, or ``LATE`` at ``deadline`` (loop time). Only for work that signs
    nothing: cancelling it loses nothing."""
    try:
        async with asyncio.timeout_at(deadline):
            return await work
    except TimeoutError:
        return LATE


@dataclass(slots=True)
class SendBounds:
    """When one pass's sending must stop (loop times). Rebuilds after an expired blockhash
    start only before ``retry_until``; nothing starts after ``deadline`` (the pass's), and
    what is in flight then ends ``abandoned``. ``cut`` records that the deadline struck."""

    retry_until: float
    deadline: float | None = None
    cut: bool = False

    def retry_closed(self) -> bool:
        return asyncio.get_running_loop().time() >= self.retry_until

    def over(self) -> bool:
        now = asyncio.get_running_loop().time()
        return self.deadline is not None and now >= self.deadline


@dataclass(slots=True)
class PassReport:
    """What one pass of one task did, for the summary line and tests."""

    task: str
    planned: int = 0
    sent: int = 0
    confirmed: int = 0
    failed: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    # "action:reason" -> count (the demo world's label format), as planned and as confirmed.
    planned_actions: Counter[str] = field(default_factory=Counter)
    confirmed_actions: Counter[str] = field(default_factory=Counter)
    reclaimed_lamports: int = 0
    fees_lamports: int = 0
    transactions: int = 0
    unknown: int = 0  # actions sent whose outcome the chain has not shown (also in failed)
    orphans: int = 0
    errors: list[str] = field(default_factory=list)
    waiting: int = 0  # due actions beyond max_actions_per_pass: the next passes' work
    waiting_lamports: int = 0


def action_key(action: Action) -> str:
    """``action:reason``, e.g. ``clean:job_expired``."""
    return f"{action.kind}:{action.reason}"


def dry_run_lines(plan: Plan) -> list[str]:
    """One JSON object per planned action; ``account`` is the job, or the run for quitAdmin."""
    lines = []
    for action in plan.actions:
        entry: dict[str, str | int | None] = {
            "action": str(action.kind),
            "account": str(action.account),
            "reason": str(action.reason),
            "task": str(plan.task),
            "payer": str(action.payer),
            "lamports": action.lamports,
            # Every line carries market (null: a quitAdmin whose job is gone).
            "market": None if action.market is None else str(action.market),
        }
        if action.job is not None and action.job != action.account:
            entry["job"] = str(action.job)
        lines.append(json.dumps(entry))
    return lines


def waiting_line(plan: Plan) -> str:
    """After a dry run's actions: what the plan leaves for later passes (its backlog)."""
    return json.dumps(
        {
            "waiting": {
                "task": str(plan.task),
                "actions": sum(plan.waiting.values()),
                "lamports": sum(plan.waiting_lamports.values()),
                "by_reason": {str(reason): count for reason, count in plan.waiting.items()},
            }
        }
    )


def build_instructions(
    actions: Sequence[Action], identity: Identity
) -> tuple[list[Instruction], list[Keypair]]:
    """The instructions for ``actions`` and the keypairs besides the fee payer that sign them.

    A claim's new run account is derived from the node authority's key and the job, never
    random: a repeat of the claim (after a restart, from a replica) creates the same account
    and fails on chain (see ``chain.keypair.run_keypair``).
    """
    instructions: list[Instruction] = []
    signers: list[Keypair] = []
    node = identity.node
    for action in actions:
        run = None
        if action.kind is MaintenanceInstruction.CLAIM:
            if node is None:
                raise ValueError("a claim needs the node authority's keypair (claiming is off)")
            new_run = run_keypair(node, action.account)
            signers.append(new_run)
            run = new_run.pubkey()
        instructions.append(
            instruction_for(
                action,
                program_id=identity.program_id,
                authority=identity.keypair.pubkey(),
                claim_identity=identity.claim,
                run=run,
            )
        )
    if signers and node is not None and node.pubkey() != identity.keypair.pubkey():
        signers.append(node)
    return instructions, signers


@dataclass(slots=True)
class Executor:
    """Sends the plans of every task; one instance per keeper process."""

    settings: Settings
    identity: Identity
    metrics: Metrics
    scope: Scope
    sender: Sender
    budget: budget.FeeBudget
    monotonic: Callable[[], float] = time.monotonic
    trust: Trust | None = None
    # The leadership fence (service.leadership): asked again right before every send starts.
    may_send: Callable[[], bool] = lambda: True
    on_confirmed: Callable[[Action], None] | None = None  # each action the chain shows done
    _busy: set[Pubkey] = field(default_factory=set)

    async def execute(
        self, plan: Plan, report: PassReport, limit: int, *, deadline: float | None = None
    ) -> bool:
        """Send ``plan`` (at most ``limit`` actions); True when ``deadline`` (loop time) cut
        it short. Sending runs within send.retry_window_seconds for rebuilds."""
        window = self.settings.send.retry_window_seconds
        bounds = SendBounds(asyncio.get_running_loop().time() + window, deadline)
        actions = [a for a in plan.actions if a.account not in self._busy][:limit]
        if self._standby(actions, report):
            return False
        batches = pack(
            actions,
            program_id=self.identity.program_id,
            fee_payer=self.identity.keypair.pubkey(),
            authority=self.identity.keypair.pubkey(),
            claim_identity=self.identity.claim,
        )
        self._report_density(actions, batches)
        semaphore = asyncio.Semaphore(self.settings.send.max_in_flight)

        async def one(batch: Batch) -> None:
            async with semaphore:
                await self._send_batch(plan, batch, report, bounds)

        await asyncio.gather(*(one(batch) for batch in batches))
        return bounds.cut

    def _report_density(self, actions: list[Action], batches: list[Batch]) -> None:
        """Instructions per transaction as packed, over the bound for the same workload."""
        signing = Signing(
            self.identity.program_id,
            self.identity.keypair.pubkey(),
            self.identity.keypair.pubkey(),
            self.identity.claim,
        )
        for kind in {batch.kind for batch in batches}:
            mine = [a for a in actions if a.kind is kind]
            count = sum(1 for batch in batches if batch.kind is kind)
            bound = density_bound(mine, signing)
            if count and bound:
                achieved = len(mine) / count
                self.metrics.transaction_density_ratio.labels(action=kind).set(achieved / bound)
                log.info(
                    "packed",
                    action=str(kind),
                    per_transaction=round(achieved, 2),
                    bound=round(bound, 2),
                    transactions=count,
                )

    async def _send_batch(
        self, plan: Plan, batch: Batch, report: PassReport, bounds: SendBounds
    ) -> None:
        self._busy.update(batch.targets)  # never two in-flight transactions on one account
        try:
            pending = list(batch.actions)
            for attempt in range(1, SEND_ATTEMPTS + 1):
                if attempt > 1 and bounds.retry_closed():
                    self._retry_window_closed(pending, attempt - 1, report)
                    return
                # Re-read and re-judge before every (re)build: the chain moved meanwhile.
                keep = await _by(bounds.deadline, self._recheck(pending, report))
                if isinstance(keep, _Late):
                    self._cut(pending, bounds, report)
                    return
                if not keep:
                    return
                held = await _by(bounds.deadline, self._guards_allow(keep, report))
                if isinstance(held, _Late):
                    self._cut(keep, bounds, report)
                    return
                if held is None:
                    return
                try:
                    final = attempt == SEND_ATTEMPTS
                    pending = await self._send(plan, keep, report, bounds, final=final)
                finally:
                    self.budget.release(held)  # what was actually paid is spent by now
                if not pending:
                    return
        finally:
            self._busy.difference_update(batch.targets)

    def _retry_window_closed(
        self, actions: Sequence[Action], attempts: int, report: PassReport
    ) -> None:
        """Expired, and no time left to rebuild: counted expired, the next pass retries."""
        window = self.settings.send.retry_window_seconds
        log.warning(
            "send retry window closed: not rebuilding",
            actions=len(actions),
            attempts=attempts,
            window_s=window,
        )
        for action in actions:
            detail = f"not rebuilt after {attempts} attempt(s): send.retry_window_seconds"
            self._fail(action, str(SendOutcome.EXPIRED), report, detail=detail)

    def _cut(self, actions: Sequence[Action], bounds: SendBounds, report: PassReport) -> None:
        """The pass deadline came before these were signed: nothing sent, left for later."""
        bounds.cut = True
        for action in actions:
            report.skipped[DEADLINE_REASON] += 1
            self.metrics.actions_failed.labels(action=action.kind, reason=DEADLINE_REASON).inc()

    # -- re-check ----------------------------------------------------------------------

    async def _recheck(self, actions: Sequence[Action], report: PassReport) -> list[Action]:
        now = (await chain_time(self.scope.rpc)).unix_timestamp
        verdicts = await self._verdicts(actions, now)
        if self.trust is not None:  # the clock veto and the verify endpoints, last of all
            live = [a for a, v in zip(actions, verdicts, strict=True) if v is None]
            screened = iter(await self.trust.screen(live, now))
            verdicts = [v if v is not None else next(screened) for v in verdicts]
        keep = []
        for action, verdict in zip(actions, verdicts, strict=True):
            if verdict is None:
                keep.append(action)
            else:
                self._skip(action, verdict, report)
        return keep

    async def _verdicts(self, actions: Sequence[Action], now: int) -> list[Reason | None]:
        kind = actions[0].kind
        if kind is MaintenanceInstruction.QUIT_ADMIN:
            runs = await run_views(self.scope, [a.account for a in actions])
            jobs = await job_views(self.scope, [a.job for a in actions if a.job is not None])
            params = expired_runs.ExpiredRunsParams(
                is_admin=self.identity.is_admin, grace_seconds=self.settings.quit.grace_seconds
            )
            return [
                expired_runs.recheck(a, runs[a.account], _job_of(a, jobs), now, params)
                for a in actions
            ]
        if kind is MaintenanceInstruction.CLAIM:
            return [await self._recheck_claim(a) for a in actions]
        jobs = await job_views(self.scope, [a.account for a in actions])
        markets = await market_terms(self.scope, [a.market for a in actions if a.market])
        finished = finished_jobs.FinishedJobsParams(is_admin=self.identity.is_admin)
        return [
            finished_jobs.recheck(
                a, jobs[a.account], markets[a.market] if a.market else ABSENT, now, finished
            )
            for a in actions
        ]

    async def _recheck_claim(self, action: Action) -> Reason | None:
        jobs = await job_views(self.scope, [action.account])
        runs = await count_program_accounts(
            self.scope.rpc, self.scope.program_id, filters.runs_of_job(action.account)
        )
        markets = await market_terms(self.scope, [] if action.market is None else [action.market])
        claim = self.identity.claim
        stake = ABSENT if claim is None else await stake_of(self.scope, claim.stake)
        fresh = stopped_jobs.ClaimState(
            job=jobs[action.account],
            has_run=runs > 0,
            market=markets.get(action.market, ABSENT) if action.market else ABSENT,
            stake=stake,
        )
        return stopped_jobs.recheck(action, fresh, self._claim_params())

    def _claim_params(self) -> stopped_jobs.StoppedJobsParams:
        return stopped_jobs.StoppedJobsParams(
            claim_enabled=self.settings.claim.enabled,
            identity=self.identity.claim,
            payer=self.identity.keypair.pubkey(),
        )

    # -- guards ------------------------------------------------------------------------

    async def _guards_allow(self, actions: Sequence[Action], report: PassReport) -> int | None:
        """The lamports reserved in the fee budget for sending ``actions`` (the fee cap plus
        claim rent: release them after the send), or None when a guard pauses sending."""
        fees = self.settings.fees
        rent = sum(-a.lamports for a in actions if a.kind is MaintenanceInstruction.CLAIM)
        cost = fees.max_fee_per_transaction_lamports + rent
        released_before = self.budget.released_total
        balance = await get_balance(self.scope.rpc, self.identity.keypair.pubkey())
        self.metrics.balance_lamports.set(balance)
        # What batches in flight may still pay counts as gone (conservative if they landed),
        # and so does what batches finishing during the read held: the node's answer may
        # predate their fees.
        held = self.budget.held + self.budget.released_total - released_before
        spendable = balance - held
        below = not budget.above_balance_floor(spendable, cost, fees.balance_floor_lamports)
        # No await from this check to the reservation: batches in flight cannot both pass it.
        now = self.monotonic()
        over = not self.budget.allows(now, cost)
        self.metrics.sending_paused.labels(cause="balance_floor").set(int(below))
        self.metrics.sending_paused.labels(cause="fee_budget").set(int(over))
        if below or over:
            cause = "balance_floor" if below else "fee_budget"
            log.warning("sending paused", cause=cause, balance=balance, actions=len(actions))
            for action in actions:
                report.skipped[f"paused_{cause}"] += 1
                self.metrics.actions_failed.labels(
                    action=action.kind, reason=f"paused_{cause}"
                ).inc()
            return None
        self.budget.reserve(now, cost)
        return cost

    # -- send --------------------------------------------------------------------------

    async def _unit_price(self, actions: Sequence[Action]) -> int:
        fees = self.settings.fees
        writable = [a.account for a in actions]
        recent = await recent_prioritization_fees(self.scope.rpc, writable)
        choice = budget.choose_unit_price(
            recent,
            percentile=max(fees.percentile, 1),
            floor=fees.floor_micro_lamports,
            cap=fees.cap_micro_lamports,
        )
        if choice.source is budget.PriceSource.FLOOR_FALLBACK:
            self.metrics.priority_fee_fallbacks.inc()
            log.warning("fee source failed: paying the floor", price=choice.micro_lamports)
        self.metrics.priority_fee.set(choice.micro_lamports)
        return choice.micro_lamports

    async def _send(
        self,
        plan: Plan,
        actions: list[Action],
        report: PassReport,
        bounds: SendBounds,
        *,
        final: bool,
    ) -> list[Action]:
        """Send ``actions`` in one transaction; returns those worth re-checking and resending."""
        price = await _by(bounds.deadline, self._unit_price(actions))
        if isinstance(price, _Late):
            self._cut(actions, bounds, report)
            return []
        instructions, signers = build_instructions(actions, self.identity)
        if self._standby(actions, report):
            return []
        try:
            # Not under _by: at the deadline the sender itself stops, and a transaction
            # already out comes back `abandoned` (counted) instead of being lost.
            result = await self.sender.execute(
                instructions,
                extra_signers=signers,
                unit_price=price,
                unit_limit_margin=self.settings.send.unit_limit_margin,
                max_fee_lamports=self.settings.fees.max_fee_per_transaction_lamports,
                abandon_at=bounds.deadline,
            )
        except TimeoutError:  # the deadline struck before signing
            self._cut(actions, bounds, report)
            return []
        if result.outcome is SendOutcome.ABANDONED and result.signature is not None:
            bounds.cut = bounds.cut or bounds.over()
            log.warning(
                "transaction abandoned: it may still land",
                signature=str(result.signature),
                actions=len(result.kept),
                error=result.error,
            )
        read_back = await _by(
            bounds.deadline,
            effects.shown(self.scope.rpc, actions, result, self.identity.node),
        )
        # Past the deadline nothing shows: counted as unknown, never as reclaimed.
        seen = frozenset() if isinstance(read_back, _Late) else read_back
        result = effects.settle(result, seen)
        retry = [] if final else self._retryable(actions, result, report, seen)
        self._account(plan, _Sent(actions, result, seen, frozenset(retry)), report)
        return [actions[i] for i in retry]

    def _retryable(
        self, actions: list[Action], result: BatchResult, report: PassReport, seen: frozenset[int]
    ) -> list[int]:
        """Indices worth re-checking and resending: all of an expired transaction (or of an
        unknown one past its blockhash's lifetime that shows nothing on chain); of one that
        landed but failed because another party closed a target first (3012), or because a
        claim's run exists already (an earlier send of it landed), all but that action (a
        skip) — the program rolled the rest back."""
        if result.outcome is SendOutcome.EXPIRED:
            log.warning("blockhash expired before landing: re-checking", actions=len(actions))
            return list(result.kept)
        if result.outcome is SendOutcome.UNKNOWN and result.blockhash_expired and not seen:
            # It can land no more, and the chain shows none of it: as good as expired.
            log.warning(
                "outcome unknown, nothing shows on chain: re-checking", actions=len(actions)
            )
            return list(result.kept)
        failure = result.failure
        if (
            result.outcome is SendOutcome.FAILED
            and failure is not None
            and failure.index in result.kept
            and (reason := _done_already(actions[failure.index], failure)) is not None
        ):
            self._skip(actions[failure.index], reason, report)
            return [i for i in result.kept if i != failure.index]
        return []

    def _charge(self, actions: list[Action], result: BatchResult, report: PassReport) -> None:
        """Fees paid are what landed; the budget also counts what may have (worst case)."""
        paid = result.fee_paid_lamports
        worst = result.fee_lamports if result.may_have_landed else 0
        rent = 0
        if result.may_have_landed and result.outcome is not SendOutcome.FAILED:
            rent = sum(-actions[i].lamports for i in result.kept if actions[i].lamports < 0)
        if worst or rent:
            self.budget.spend(self.monotonic(), worst + rent)
        self.metrics.fees_paid_lamports.inc(paid)
        self.metrics.transactions.labels(outcome=result.outcome).inc()
        report.fees_lamports += paid
        if result.signature is not None:
            report.transactions += 1

    def _account(self, plan: Plan, sent: _Sent, report: PassReport) -> None:
        actions, result = sent.actions, sent.result
        self._charge(actions, result, report)
        self._account_dropped(actions, result, report)
        kept = [actions[i] for i in result.kept]
        if result.signature is not None and kept:
            self.metrics.instructions_per_transaction.labels(action=kept[0].kind).observe(len(kept))
            for action in kept:
                self.metrics.actions_sent.labels(action=action.kind).inc()
            report.sent += len(kept)
        if result.outcome is SendOutcome.CONFIRMED:
            self._account_confirmed(plan, sent, report)
            return
        failure = result.failure
        for index in result.kept:
            if index in sent.retrying or (
                failure is not None
                and failure.index == index
                and _done_already(actions[index], failure) is not None
            ):
                continue
            self._fail(actions[index], str(result.outcome), report, detail=result.error or "")

    def _account_dropped(
        self, actions: list[Action], result: BatchResult, report: PassReport
    ) -> None:
        for index, fault in result.dropped.items():
            if (reason := _done_already(actions[index], fault)) is not None:
                self._skip(actions[index], reason, report)
            else:
                name = "/".join(fault.names) or "unknown"
                self._fail(actions[index], "simulation_rejected", report, detail=name)

    def _account_confirmed(self, plan: Plan, sent: _Sent, report: PassReport) -> None:
        """Confirmed by status: each action counts as done only where the chain shows it."""
        result = sent.result
        if result.confirmation_seconds is not None:
            self.metrics.confirmation_latency.observe(result.confirmation_seconds)
        for index in result.kept:
            action = sent.actions[index]
            if index in sent.seen:
                self._confirmed(plan, action, result, report)
            else:
                detail = "the status says confirmed; the chain does not show it"
                self._fail(action, SendOutcome.UNKNOWN, report, detail=detail)

    def _confirmed(
        self, plan: Plan, action: Action, result: BatchResult, report: PassReport
    ) -> None:
        m = self.metrics
        m.actions_confirmed.labels(action=action.kind, reason=action.reason).inc()
        report.confirmed += 1
        report.confirmed_actions[action_key(action)] += 1
        if action.lamports > 0:
            m.reclaimed_lamports.labels(action=action.kind).inc(action.lamports)
            report.reclaimed_lamports += action.lamports
        else:
            m.claim_rent_lamports.inc(-action.lamports)
        if self.on_confirmed is not None:
            self.on_confirmed(action)
        log.info(
            "action confirmed",
            task=str(plan.task),
            action=str(action.kind),
            account=str(action.account),
            reason=str(action.reason),
            signature=str(result.signature),
        )

    def _standby(self, actions: Sequence[Action], report: PassReport) -> bool:
        """True (and counted in the report) when this keeper may not start a send now."""
        if not actions or self.may_send():
            return False
        report.skipped["standby"] += len(actions)
        log.info("standby: not sending", actions=len(actions))
        return True

    def _skip(self, action: Action, reason: Reason, report: PassReport) -> None:
        report.skipped[str(reason)] += 1
        self.metrics.actions_failed.labels(action=action.kind, reason=str(reason)).inc()
        log.info(
            "action skipped",
            action=str(action.kind),
            account=str(action.account),
            reason=str(reason),
        )

    def _fail(self, action: Action, why: str, report: PassReport, *, detail: str = "") -> None:
        report.failed += 1
        if why == SendOutcome.UNKNOWN:
            report.unknown += 1
        self.metrics.actions_failed.labels(action=action.kind, reason=why).inc()
        log.warning(
            "action failed",
            action=str(action.kind),
            account=str(action.account),
            reason=why,
            detail=detail,
        )


@dataclass(frozen=True, slots=True)
class _Sent:
    """One send to account for: the actions, how it ended, what the chain shows of it
    (indices into ``actions``) and what will be re-checked and resent."""

    actions: list[Action]
    result: BatchResult
    seen: frozenset[int]
    retrying: frozenset[int]


def _done_already(action: Action, fault: Fault) -> Reason | None:
    """Why a failed instruction is a skip rather than an error: its work is done already."""
    if fault.already_closed:
        return Reason.ALREADY_CLOSED
    if fault.already_in_use and action.kind is MaintenanceInstruction.CLAIM:
        return Reason.ALREADY_CLAIMED
    return None


def _job_of(action: Action, jobs: dict[Pubkey, JobView]) -> JobView:
    # A job that was not fetched must never look missing (that would mean quitAdmin).
    if action.job is None:
        raise ValueError(f"quitAdmin action for {action.account} names no job")
    return require(jobs, action.job, "job")
