"""The runner: one pass per task (chain.scan -> tasks.decide -> chain.send), run once or
on a schedule, with metrics, health and graceful shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import signal
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TextIO

import structlog
from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from keeper import __version__
from keeper.chain.accounts import get_balance
from keeper.chain.clock import ChainTime, chain_time
from keeper.chain.endpoints import FailoverRpc
from keeper.chain.pages import ScanMethod
from keeper.chain.rpc import RpcClient
from keeper.chain.scan import ScanObserver
from keeper.chain.sender import Sender
from keeper.errors import ConfigError, KeeperError
from keeper.service import discovery
from keeper.service.context import (
    NO_VERIFY_WARNING,
    EndpointMetrics,
    Identity,
    check_program,
    check_rpc,
    keypair_warnings,
    load_identity,
    resolve_claim,
    rpc_client,
    scan_options,
    verify_clients,
)
from keeper.service.execution import (
    DEADLINE_REASON,
    Executor,
    PassReport,
    action_key,
    dry_run_lines,
    waiting_line,
)
from keeper.service.health import Readiness, build_app, start_http
from keeper.service.leadership import (
    Leadership,
    LeaseElector,
    SoleKeeper,
    start_election,
    stop_election,
)
from keeper.service.live import LiveMode
from keeper.service.metrics import Metrics
from keeper.service.settings import Settings, TaskSettings
from keeper.service.trust import ClockGuard, Trust, Verifier
from keeper.tasks import budget, expired_runs, finished_jobs, stopped_jobs, trust
from keeper.tasks.plan import TASK_ACTION_REASONS, Action, Plan, Task

if TYPE_CHECKING:
    from solders.pubkey import Pubkey

log = structlog.get_logger("keeper")


class PassOverDeadline(KeeperError):
    """A pass ran past schedule.pass_deadline_seconds and was abandoned."""

    hint = (
        "find the slow RPC method (nosana_keeper_rpc_request_duration_seconds) and use a "
        "faster node, or raise schedule.pass_deadline_seconds"
    )


@dataclass(slots=True)
class Keeper:
    """Everything a pass needs, started once (checks first, nothing signed before them)."""

    settings: Settings
    metrics: Metrics
    dry_run: bool = False
    out: TextIO = field(default_factory=lambda: sys.stdout)
    rpc: FailoverRpc | None = None
    verify: list[RpcClient] = field(default_factory=list)
    trust: Trust | None = None
    identity: Identity | None = None
    executor: Executor | None = None
    last_success: dict[Task, float] = field(default_factory=dict)
    last_started: dict[Task, float] = field(default_factory=dict)  # monotonic, per task
    leadership: Leadership = field(default_factory=SoleKeeper)
    live: LiveMode | None = None  # the live feed, in the service with discovery.live
    chain_clock: tuple[int, float] | None = None  # last chain time seen, and when (monotonic)
    scan_observer: ScanObserver | None = None  # a progress display, on a terminal

    async def start(self) -> None:
        self.metrics.build_info.info({"version": __version__})
        if "census_interval_seconds" in self.settings.clean.model_fields_set:
            log.warning(
                "clean.census_interval_seconds is deprecated and ignored",
                why="every full pass takes the census from its one read of the jobs",
                fix="remove it from the configuration",
            )
        self.metrics.dry_run.set(1 if self.dry_run else 0)
        identity = load_identity(
            self.settings, dry_run=self.dry_run
        )  # keypair problems stop here, before any I/O
        for found in keypair_warnings(self.settings):
            log.warning(found.message, fix=found.fix)
        self.rpc = rpc_client(self.settings, self.metrics)
        await check_rpc(self.rpc)
        markets = await check_program(self.rpc, identity.program_id, scan_options(self.settings))
        self.identity = await resolve_claim(self.rpc, identity, self.settings.claim.nft)
        self.verify = verify_clients(self.settings, self.metrics)
        self.trust = self._trust()
        role = "market admin" if self.identity.is_admin else "not the market admin"
        log.info(
            "keeper started",
            version=__version__,
            rpc=self.rpc.redacted_url,
            read_endpoints=len(self.rpc.reads),
            send_endpoints=len(self.rpc.sends),
            verify_endpoints=len(self.verify),
            program=str(self.identity.program_id),
            markets=markets,
            keeper=str(self.identity.keypair.pubkey()),
            role=role,
            admin_tasks="on" if self.identity.is_admin else "off (quitAdmin, cleanAdmin need it)",
            dry_run=self.dry_run,
        )
        if not self.verify:
            log.warning(NO_VERIFY_WARNING)
        sender = Sender(
            self.rpc,
            fee_payer=self.identity.keypair,
            program_id=self.identity.program_id,
            resend_interval_s=self.settings.send.resend_interval_seconds,
            version="legacy",  # the packer measures legacy messages (v0 is 2 bytes longer)
        )
        self.executor = Executor(
            self.settings,
            self.identity,
            self.metrics,
            self.scope(),
            sender,
            budget.FeeBudget(limit=self.settings.fees.hourly_budget_lamports),
            trust=self.trust,
            may_send=self._may_send,
            on_confirmed=self._due_confirmed,
        )

    def _trust(self) -> Trust:
        assert self.identity is not None
        guard = ClockGuard(self.settings.chain.max_clock_lead_seconds, self.metrics)
        if not self.verify:
            return Trust(guard)
        verifier = Verifier(
            self.verify,
            self.identity.program_id,
            is_admin=self.identity.is_admin,
            grace_seconds=self.settings.quit.grace_seconds,
            tolerance_s=self.settings.rpc.verify_time_tolerance_seconds,
            observer=EndpointMetrics(self.metrics),
        )
        return Trust(guard, verifier)

    async def close(self) -> None:
        if self.executor is not None:
            await self.executor.sender.shutdown(self.settings.send.shutdown_deadline_seconds)
        if self.rpc is not None:
            await self.rpc.aclose()
        for client in self.verify:
            await client.aclose()

    # Late-bound: the election starts after the checks, and replaces ``leadership`` then.
    def _may_send(self) -> bool:
        return self.leadership.may_send()

    def _role(self) -> str:
        return self.leadership.role()

    def scope(self) -> discovery.Scope:
        assert self.rpc is not None
        assert self.identity is not None
        return discovery.Scope(
            self.rpc,
            self.identity.program_id,
            self.settings.rpc.scan_chunk_size,
            ScanMethod(self.settings.rpc.scan_method),
            self.settings.rpc.scan_page_limit,
            observer=self.scan_observer,
        )

    def enabled_tasks(self) -> list[Task]:
        assert self.identity is not None
        tasks = []
        if self.settings.quit.enabled and self.identity.is_admin:
            tasks.append(Task.EXPIRED_RUNS)
        if self.settings.claim.enabled and self.identity.claim is not None:
            tasks.append(Task.STOPPED_JOBS)
        if self.settings.clean.enabled:
            tasks.append(Task.FINISHED_JOBS)
        return tasks

    def task_settings(self, task: Task) -> TaskSettings:
        return {
            Task.EXPIRED_RUNS: self.settings.quit,
            Task.STOPPED_JOBS: self.settings.claim,
            Task.FINISHED_JOBS: self.settings.clean,
        }[task]

    async def read_chain_time(self) -> int:
        assert self.rpc is not None
        now = await chain_time(self.rpc)
        self.observe_chain_time(now)
        return now.unix_timestamp

    def observe_chain_time(self, now: ChainTime) -> None:
        """Chain time just read (a pass's clock read, or the live feed's Clock sysvar)."""
        self.metrics.chain_time.set(now.unix_timestamp)
        self.metrics.chain_time_lag.set(now.lag_behind(time.time()))
        self.chain_clock = (now.unix_timestamp, time.monotonic())

    def _due_confirmed(self, action: Action) -> None:
        """Due (chain time) to confirmed: chain time now is the last read plus the seconds
        since (measurement only: the local clock never decides anything here)."""
        if self.chain_clock is None or not action.due_at:
            return
        seen, at = self.chain_clock
        if self.live is not None and self.live.now is not None and self.live.following:
            seen, at = self.live.now, time.monotonic()  # the feed's clock: fresh every slot
        now = seen + (time.monotonic() - at)
        task = next(t for t, reasons in TASK_ACTION_REASONS.items() if action.reason in reasons)
        self.metrics.due_to_confirmed.labels(task=task).observe(max(0.0, now - action.due_at))

    def request_for(self, tasks: Sequence[Task], now: int) -> discovery.PassRequest:
        assert self.identity is not None
        admin = self.identity.is_admin
        quit_params = expired_runs.ExpiredRunsParams(
            is_admin=admin, grace_seconds=self.settings.quit.grace_seconds
        )
        claim_params = stopped_jobs.StoppedJobsParams(
            claim_enabled=self.settings.claim.enabled,
            identity=self.identity.claim,
            payer=self.identity.keypair.pubkey(),
        )
        return discovery.PassRequest(
            now=now,
            expired_runs=quit_params if Task.EXPIRED_RUNS in tasks else None,
            stopped_jobs=claim_params if Task.STOPPED_JOBS in tasks else None,
            finished_jobs=finished_jobs.FinishedJobsParams(is_admin=admin)
            if Task.FINISHED_JOBS in tasks
            else None,
            limits={task: self.task_settings(task).max_actions_per_pass for task in tasks},
        )

    async def run_task(self, task: Task, scanning: asyncio.Lock | None = None) -> PassReport:
        """One pass of ``task`` alone (it reads only the account kinds it needs).

        ``scanning``, when given, is held while the pass reads and decides (not while it
        sends): passes started together then read one after another and send side by
        side. Tasks that run together are better passed to ``run_tasks``: one read."""
        async with scanning or contextlib.nullcontext():
            return (await self.run_tasks([task]))[0]

    async def run_tasks(
        self,
        tasks: Sequence[Task],
        *,
        changed_since: int | None = None,
        jobs_with_runs: Collection[Pubkey] = (),
    ) -> list[PassReport]:
        """One pass of ``tasks`` together: one read of each account kind they need, every
        decision from it, then each task's sends (concurrently), all by the pass deadline
        (``schedule.pass_deadline_seconds``). Errors are logged and counted per task; they
        never escape. ``changed_since``: read only the accounts written since that slot
        (``discovery.changed_read``, live mode's interval resync with paginated scans)."""
        reports = {task: PassReport(task=str(task)) for task in tasks}
        started = time.monotonic()
        limit_s = self.settings.schedule.pass_deadline_seconds
        deadline = asyncio.get_running_loop().time() + limit_s
        names = "+".join(str(task) for task in tasks)
        try:
            async with asyncio.timeout_at(deadline):
                now = await self.read_chain_time()
                request = self.request_for(tasks, now)
                if self.live is not None:  # kept for the live book: due later, no read then
                    request = replace(request, upcoming_limit=self.settings.discovery.max_scheduled)
                if changed_since is None:
                    read = await discovery.full_read(self.scope(), request)
                else:
                    read = await discovery.changed_read(
                        self.scope(), request, changed_since, jobs_with_runs=jobs_with_runs
                    )
                for task, (plan, findings) in read.plans.items():
                    read.plans[task] = (await self.screen(plan, now), findings)
        except TimeoutError:
            error = PassOverDeadline(
                f"{names} pass over its {limit_s} s deadline, while scanning: nothing sent"
            )
            for task in tasks:
                self._failed(task, reports[task], error, started)
            return list(reports.values())
        except Exception as error:  # noqa: BLE001 - every task of the pass fails alike
            for task in tasks:
                self._failed(task, reports[task], error, started)
            return list(reports.values())
        self._record_read(read)
        if self.live is not None:
            self.live.read_done(read)
        await asyncio.gather(
            *(
                self._carry_out(task, read.plans[task], reports[task], started, deadline)
                for task in tasks
            )
        )
        return list(reports.values())

    def _count_error(self, task: Task, report: PassReport, error: Exception) -> None:
        report.errors.append(f"{type(error).__name__}: {error}")
        self.metrics.scans.labels(task=task, outcome="error").inc()
        self.metrics.pass_errors.labels(task=task).inc()

    def _failed(self, task: Task, report: PassReport, error: Exception, started: float) -> None:
        self._count_error(task, report, error)
        self.metrics.scan_duration.labels(task=task).observe(time.monotonic() - started)
        if isinstance(error, PassOverDeadline):
            self.metrics.passes_over_deadline.labels(task=task).inc()
            log.error(
                "pass over its deadline: abandoned",
                task=str(task),
                deadline_s=self.settings.schedule.pass_deadline_seconds,
                error=str(error),
                fix=error.hint,
            )
        elif isinstance(error, KeeperError):
            log.error("pass failed", task=str(task), error=str(error), fix=error.hint)
        else:
            log.error("pass crashed", task=str(task), exc_info=error)

    def _record_read(self, read: discovery.FullRead) -> None:
        for kind, count in read.accounts.items():
            if read.changed_since is None:  # a changed read's counts are not a full read's
                self.metrics.full_read_accounts.labels(kind=kind).set(count)
        self.metrics.updates.labels(source="full_read").inc(sum(read.accounts.values()))
        for kind, count in read.duplicates.items():
            if count:
                self.metrics.scan_duplicates.labels(kind=kind).inc(count)
                log.warning("duplicate accounts dropped", kind=kind, duplicates=count)
        for kind, count in read.undecodable.items():
            if count:
                log.warning("undecodable accounts", kind=kind, accounts=count)

    async def _carry_out(
        self,
        task: Task,
        decided: tuple[Plan, discovery.Findings],
        report: PassReport,
        started: float,
        deadline: float,
    ) -> None:
        plan, findings = decided
        try:
            self._record_plan(task, plan, findings, report)
            if self.dry_run:
                for line in dry_run_lines(plan):
                    print(line, file=self.out, flush=True)
                if plan.waiting:
                    print(waiting_line(plan), file=self.out, flush=True)
            else:
                await self._send(task, plan, report, deadline)
        except Exception as error:  # noqa: BLE001 - logged, counted, the next tick runs
            self._failed(task, report, error, started)
            return
        self.metrics.scans.labels(task=task, outcome="ok").inc()
        self.metrics.last_success.labels(task=task).set(time.time())
        self.last_success[task] = time.monotonic()
        self.metrics.scan_duration.labels(task=task).observe(time.monotonic() - started)

    async def _send(self, task: Task, plan: Plan, report: PassReport, deadline: float) -> None:
        """Send ``plan`` by ``deadline`` (loop time): sending stops at it without losing a
        result."""
        over = f"{task} pass over its {self.settings.schedule.pass_deadline_seconds} s deadline"
        assert self.executor is not None
        try:
            async with asyncio.timeout_at(deadline):
                await self.refresh_balance()
        except TimeoutError as error:
            raise PassOverDeadline(f"{over}, before sending: nothing sent") from error
        limit = self.task_settings(task).max_actions_per_pass
        if await self.executor.execute(plan, report, limit, deadline=deadline):
            raise PassOverDeadline(
                f"{over}, while sending: {report.skipped[DEADLINE_REASON]} action(s) left "
                "unsent, transactions in flight counted abandoned"
            )

    async def screen(self, plan: Plan, now: int) -> Plan:
        """The plan without what the clock veto or the verify endpoints withhold (counted)."""
        assert self.trust is not None
        return trust.withhold(plan, await self.trust.screen(plan.actions, now))

    async def refresh_balance(self) -> None:
        assert self.rpc is not None
        assert self.identity is not None
        balance = await get_balance(self.rpc, self.identity.keypair.pubkey())
        self.metrics.balance_lamports.set(balance)

    def _record_plan(
        self, task: Task, plan: Plan, findings: discovery.Findings, report: PassReport
    ) -> None:
        m = self.metrics
        for kind, count in findings.seen.items():
            m.accounts_found.labels(task=task, kind=kind).set(count)
        m.accounts_waiting.labels(task=task).set(plan.due)
        m.record_backlog(
            str(task),
            [str(reason) for reason in TASK_ACTION_REASONS[task]],
            {str(reason): count for reason, count in plan.waiting.items()},
            {str(reason): lamports for reason, lamports in plan.waiting_lamports.items()},
        )
        report.waiting = sum(plan.waiting.values())
        report.waiting_lamports = sum(plan.waiting_lamports.values())
        for action in plan.actions:
            m.actions_planned.labels(action=action.kind, reason=action.reason).inc()
            report.planned_actions[action_key(action)] += 1
        for reason, count in plan.skips.items():
            m.skips.labels(task=task, reason=reason).inc(count)
            report.skipped[str(reason)] += count
        if findings.legacy_jobs is not None:
            m.legacy_jobs.set(findings.legacy_jobs)
        if findings.orphan_jobs is not None:
            m.orphan_jobs.set(findings.orphan_jobs)
            for orphan in plan.orphans:
                log.warning("orphan job", task=str(task), account=str(orphan), reason="orphan")
        report.planned = len(plan.actions)
        report.orphans = len(plan.orphans)
        log.info(
            "pass planned",
            task=str(task),
            actions=len(plan.actions),
            waiting=dict(plan.waiting),
            skipped=dict(plan.skips),
            seen=findings.seen,
        )

    # -- the schedule ------------------------------------------------------------------

    def tick_seconds(self) -> float:
        """The scheduler's tick: the shortest interval of the enabled tasks."""
        return min(
            (self.task_settings(task).interval_seconds for task in self.enabled_tasks()),
            default=60.0,
        )

    def due_tasks(self, now: float) -> list[Task]:
        """Tasks whose interval has passed since they last started (monotonic ``now``),
        give or take the jitter: the tasks due on one tick share its read."""
        slack = self.settings.schedule.jitter_seconds + 1.0
        return [
            task
            for task in self.enabled_tasks()
            if task not in self.last_started
            or now - self.last_started[task] >= self.task_settings(task).interval_seconds - slack
        ]

    async def tick(self) -> None:
        if self.live is not None and self.live.in_charge:
            self.live.timer()  # live: the feed and its resyncs do the tasks' work
            return
        now = time.monotonic()
        tasks = self.due_tasks(now)
        for task in tasks:
            self.last_started[task] = now
        if tasks:
            await self.run_tasks(tasks)

    def live_resynced(self, tasks: Sequence[Task]) -> None:
        """A live-mode full read succeeded: the tasks are served (readiness) until the next."""
        now = time.monotonic()
        for task in tasks:
            self.last_started[task] = now

    # -- readiness ---------------------------------------------------------------------

    def readiness(self) -> Readiness:
        async def rpc_ok() -> str | None:
            assert self.rpc is not None
            await self.rpc.call("getHealth")
            return None

        async def balance_ok() -> str | None:
            assert self.rpc is not None
            assert self.identity is not None
            balance = await get_balance(self.rpc, self.identity.keypair.pubkey())
            floor = self.settings.fees.balance_floor_lamports
            return None if balance >= floor else f"balance {balance} below floor {floor}"

        async def chain_clock_ok() -> str | None:
            return None if self.trust is None else self.trust.clock.problem()

        checks: dict[str, Callable[[], Awaitable[str | None]]] = {"rpc": rpc_ok}
        if not self.dry_run:  # a dry run spends nothing: its balance cannot make it unready
            checks["balance"] = balance_ok
        checks["chain_clock"] = chain_clock_ok
        for task in self.enabled_tasks():
            checks[f"task_{task}"] = self._task_check(task)
        details = {} if self.live is None else {"live_feed": self.live.problem}
        return Readiness(checks, role=self._role, details=details)

    def _task_check(self, task: Task) -> Callable[[], Awaitable[str | None]]:
        limit = self.task_settings(task).interval_seconds * (
            self.settings.schedule.ready_after_missed_passes
        )
        started = time.monotonic()

        async def check() -> str | None:
            if self.live is not None and self.live.following:
                return None  # followed live: passes run only at resyncs
            last = self.last_success.get(task)
            age = time.monotonic() - (last if last is not None else started)
            if last is None and age < limit:
                return None  # still within its first intervals
            return None if age < limit else f"no successful pass for {age:.0f}s"

        return check


def _total(counts: Iterable[Counter[str]]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for count in counts:
        total.update(count)
    return dict(sorted(total.items()))


def _task_entry(report: PassReport) -> dict[str, object]:
    entry = asdict(report)
    for name in ("skipped", "planned_actions", "confirmed_actions"):
        entry[name] = dict(sorted(getattr(report, name).items()))
    return entry


@dataclass(slots=True)
class Summary:
    """One pass of every task: totals, per ``action:reason`` and per reason left alone."""

    tasks: dict[str, dict[str, object]]
    planned_actions: dict[str, int]
    confirmed_actions: dict[str, int]
    left_alone: dict[str, int]
    planned: int
    sent: int
    confirmed: int
    failed: int
    reclaimed_lamports: int
    fees_lamports: int
    orphans: int
    errors: int

    @classmethod
    def of(cls, reports: list[PassReport]) -> Summary:
        return cls(
            tasks={r.task: _task_entry(r) for r in reports},
            planned_actions=_total(r.planned_actions for r in reports),
            confirmed_actions=_total(r.confirmed_actions for r in reports),
            left_alone=_total(r.skipped for r in reports),
            planned=sum(r.planned for r in reports),
            sent=sum(r.sent for r in reports),
            confirmed=sum(r.confirmed for r in reports),
            failed=sum(r.failed for r in reports),
            reclaimed_lamports=sum(r.reclaimed_lamports for r in reports),
            fees_lamports=sum(r.fees_lamports for r in reports),
            orphans=sum(r.orphans for r in reports),
            errors=sum(len(r.errors) for r in reports),
        )

    def outcomes(self, *, dry_run: bool = False) -> Counter[str]:
        """Every account's outcome as the demo world labels it (``clean:job_expired``,
        ``leave:queued``): actions confirmed (planned, in a dry run), then those left alone.
        """
        done = self.planned_actions if dry_run else self.confirmed_actions
        left = {f"leave:{reason}": count for reason, count in self.left_alone.items()}
        return Counter(done) + Counter(left)

    def line(self) -> str:
        return json.dumps({"summary": asdict(self)}, sort_keys=True)

    @property
    def failures(self) -> int:
        """Actions that failed (those whose outcome is unknown among them) plus passes that
        ended in an error: any of them makes ``run --once`` exit 1."""
        return self.failed + self.errors


async def run_once(keeper: Keeper) -> Summary:
    """Every enabled task once (waiting for confirmations): one shared read, then the tasks
    send concurrently: one task's slow or dropped sends never hold back another's."""
    if keeper.settings.leader_election.enabled and not keeper.dry_run:
        raise ConfigError(
            "--once does not take part in leader election: it would send beside the leader",
            hint="add --dry-run, or set KEEPER_LEADER_ELECTION_ENABLED=false when no other "
            "keeper runs",
        )
    try:
        await keeper.start()
        reports = await keeper.run_tasks(keeper.enabled_tasks())
    finally:
        await keeper.close()
    return Summary.of(list(reports))


async def _starting() -> str:
    return "the keeper is starting (checking keypair, RPC and program)"


_BIND_HINTS = {
    errno.EADDRINUSE: "another process listens on that port: set metrics.port "
    "(KEEPER_METRICS_PORT) to a free port, or stop the other process",
    errno.EACCES: "ports below 1024 need privileges: set metrics.port (KEEPER_METRICS_PORT) "
    "to 1024 or above",
    errno.EADDRNOTAVAIL: "metrics.host (KEEPER_METRICS_HOST) is not an address of this "
    "machine: use 0.0.0.0, 127.0.0.1 or one of its addresses",
}


async def _bind(settings: Settings, app: web.Application) -> tuple[web.AppRunner, int]:
    host, port = settings.metrics.host, settings.metrics.port
    try:
        return await start_http(app, host, port)
    except OSError as error:
        raise ConfigError(
            f"cannot serve /metrics on {host}:{port}: {error.strerror or error}",
            hint=_BIND_HINTS.get(
                error.errno or 0, "check metrics.host and metrics.port (KEEPER_METRICS_*)"
            ),
        ) from error


async def serve(keeper: Keeper, stop: asyncio.Event | None = None) -> None:
    """The service: one scheduler tick (the tasks due on it share a read), metrics and
    health, until signalled."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    # The port is bound first: a port in use stops the keeper before it starts anything.
    readiness = Readiness({"starting": _starting})
    http, port = await _bind(keeper.settings, build_app(keeper.metrics, readiness))
    try:
        await keeper.start()
        election = await _elect(keeper)
    except BaseException:
        await keeper.close()
        await http.cleanup()
        raise
    following = await _start_live(keeper)
    readiness.use(keeper.readiness())
    log.info("metrics listening", url=f"http://{keeper.settings.metrics.host}:{port}/metrics")
    scheduler = AsyncIOScheduler()
    tick = keeper.tick_seconds()
    scheduler.add_job(
        keeper.tick,
        "interval",
        seconds=tick,
        jitter=keeper.settings.schedule.jitter_seconds,
        max_instances=1,
        coalesce=True,
        misfire_grace_time=int(tick),
        next_run_time=datetime.now(UTC),  # first pass at once (every task), then every tick
        id="tick",
    )
    scheduler.start()
    try:
        await stop.wait()
        log.info("shutting down", deadline_s=keeper.settings.send.shutdown_deadline_seconds)
    finally:
        if election is not None:  # no send starts now; the standby may take over at once
            await stop_election(*election)
        scheduler.shutdown(wait=False)
        if following is not None:
            following.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await following
        if keeper.live is not None:
            await keeper.live.close()
        await keeper.close()
        await http.cleanup()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


async def _elect(keeper: Keeper) -> tuple[LeaseElector, asyncio.Task[None]] | None:
    """Start contending for the lease when leader election is on (a standby until won)."""
    if not keeper.settings.leader_election.enabled:
        keeper.metrics.leader.set(1)
        return None
    elector, task = await start_election(keeper.settings.leader_election, keeper.metrics)
    keeper.leadership = elector
    return elector, task


async def _start_live(keeper: Keeper) -> asyncio.Task[None] | None:
    """With discovery.live, the live feed's loop; its first connection is awaited briefly so
    the first full read is the feed's (a refused feed falls back to polling at once)."""
    if not keeper.settings.discovery.live:
        return None
    keeper.live = LiveMode(keeper)
    keeper.metrics.live_mode.set(1)
    following = asyncio.create_task(keeper.live.run())
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(keeper.live.feed_settings().open_timeout_s + 1):
            await keeper.live.first_attempt.wait()
    return following
