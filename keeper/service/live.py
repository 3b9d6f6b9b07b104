"""Live mode: follow the program over the websocket between full reads.

A full read runs when the feed's subscriptions are confirmed (at start and after every
reconnect), every ``discovery.resync_interval_seconds`` and when a market closes; between
them each notification is judged by the tasks' own rules (``tasks.live.LiveBook``) and
filed for the chain second it falls due. Every Clock sysvar notification (one a slot) is
chain time: what is due is sent through the executor (re-read and re-judged first, fee
and clock guards as in a pass), a small batch per task at a time. While the feed cannot
be had the scheduler polls at the task intervals (logged, ``live_feed_connected`` 0, a
``/readyz`` detail) and the feed is retried with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

import structlog

from keeper.chain.live import (
    AccountChanged,
    AccountClosed,
    ClockTick,
    FeedSettings,
    LiveFeed,
    Subscribed,
    ws_url_for,
)
from keeper.chain.pages import ScanMethod
from keeper.errors import FeedLost
from keeper.program import filters
from keeper.program.layouts import (
    JOB_DISCRIMINATOR,
    MARKET_DISCRIMINATOR,
    RUN_DISCRIMINATOR,
    JobAccount,
    MarketAccount,
)
from keeper.program.state import JobState
from keeper.service import discovery
from keeper.service.execution import PassReport, dry_run_lines
from keeper.tasks.live import LiveBook, LiveParams
from keeper.tasks.plan import Action, Plan, Task
from keeper.tasks.views import ABSENT, job_view, market_terms_view, run_view

if TYPE_CHECKING:
    from collections.abc import Coroutine

    from solders.pubkey import Pubkey

    from keeper.chain.accounts import RawAccount
    from keeper.service.runner import Keeper
    from keeper.tasks.views import MarketView, StakeView

log = structlog.get_logger("keeper.live")

_KINDS = {
    JOB_DISCRIMINATOR: "job",
    RUN_DISCRIMINATOR: "run",
    MARKET_DISCRIMINATOR: "market",
}


def kind_of(data: bytes) -> str:
    """The account kind a notification carries, by its anchor discriminator."""
    return _KINDS.get(bytes(data[:8]), "other")


class LiveMode:
    """The live feed's loop, its book of due actions and its resyncs, for one keeper."""

    def __init__(self, keeper: Keeper) -> None:
        self.keeper = keeper
        self.settings = keeper.settings.discovery
        self.book = LiveBook(self._params())
        self.markets: dict[Pubkey, MarketView] = {}
        self.now: int | None = None  # chain time of the last Clock notification
        self.following = False  # subscribed, and the last resync succeeded
        self.first_attempt = asyncio.Event()  # set once the first connect succeeded or failed
        self.down_since: float | None = None
        self.last_error: str | None = None
        self._feed: LiveFeed | None = None
        self._connected = False
        self._subscribed_once = False
        self._resync: asyncio.Task[None] | None = None
        self._resync_again: str | None = None
        self._was_sender = True  # the last dispatch could send (leader, or no election)
        self._resync_started = time.monotonic()
        self._sending: dict[Task, asyncio.Task[None]] = {}
        # Where the next interval resync's changed read starts: the slot of the last read
        # of every task (full, or changed: each changed read starts where the one before
        # it did) and every job a run pointed at since the last full read. Whether the
        # last read left due actions waiting: then only a full read finds them again (as
        # it does what the book left out, once chain time reaches the book's horizon).
        self._changed_from: tuple[int, frozenset[Pubkey]] | None = None
        self._backlog = False
        self._horizon_resynced: int | None = None  # the horizon a resync was started for
        self._background: set[asyncio.Task[None]] = set()

    def _params(self) -> LiveParams:
        keeper = self.keeper
        tasks = keeper.enabled_tasks()
        request = keeper.request_for(tasks, 0)
        return LiveParams(
            finished=request.finished_jobs,
            stopped=request.stopped_jobs,
            expired=request.expired_runs,
            capacity=self.settings.max_scheduled,
        )

    def feed_settings(self) -> FeedSettings:
        rpc = self.keeper.settings.rpc
        assert self.keeper.identity is not None
        return FeedSettings(
            url=rpc.ws_url or ws_url_for(rpc.url),
            program_id=self.keeper.identity.program_id,
            ping_interval_s=self.settings.ping_interval_seconds,
            silence_timeout_s=self.settings.silence_timeout_seconds,
            # Live decisions read a market's terms, never its queue: 147 bytes a write.
            watch_slice=filters.market_terms(),
        )

    # -- the loop ----------------------------------------------------------------------

    async def run(self) -> None:
        """Follow the feed until cancelled; reconnect with backoff when it is lost."""
        backoff = self.settings.reconnect_backoff_seconds
        metrics = self.keeper.metrics
        while True:
            feed = LiveFeed(
                self.feed_settings(),
                watched=self._live_markets(),
                on_bytes=metrics.count_response_bytes,
            )
            try:
                async with feed:
                    self._feed = feed
                    self._connected = True
                    async for event in feed.events():
                        if isinstance(event, Subscribed):
                            backoff = self.settings.reconnect_backoff_seconds
                        await self._on(event)
            except FeedLost as error:
                self._lost(str(error))
            except Exception as error:  # never a crash loop: log, reconnect
                log.exception("live feed crashed: reconnecting")
                self._lost(f"{type(error).__name__}: {error}")
            finally:
                self._feed = None
            await asyncio.sleep(backoff)
            backoff = min(2 * backoff, self.settings.reconnect_backoff_max_seconds)

    def _lost(self, why: str) -> None:
        self.first_attempt.set()
        was_following = self.following
        self.following = False
        self._connected = False
        self.last_error = why
        if self.down_since is None:
            self.down_since = time.monotonic()
        self.keeper.metrics.live_connected.set(0)
        self.keeper.metrics.live_reconnects.inc()
        log.warning(
            "live feed lost: polling at the task intervals until it is back",
            error=why,
            was_live=was_following,
            fix=FeedLost.hint,
        )

    async def close(self) -> None:
        for task in [self._resync, *self._sending.values(), *self._background]:
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    @property
    def in_charge(self) -> bool:
        """Followed, or its resync under way: the scheduler's polling passes stand aside."""
        return self.following or (self._resync is not None and not self._resync.done())

    def problem(self) -> str | None:
        """The readiness detail: why the keeper polls instead of following the feed."""
        if self.following:
            return None
        if self.down_since is None:
            return "live feed connecting"
        down = time.monotonic() - self.down_since
        return f"live feed down for {down:.0f}s, polling at the task intervals: {self.last_error}"

    # -- events ------------------------------------------------------------------------

    async def _on(self, event: object) -> None:
        metrics = self.keeper.metrics
        if isinstance(event, Subscribed):
            cause = "reconnect" if self._subscribed_once else "start"
            self._subscribed_once = True
            metrics.live_connected.set(1)
            # Chain time before the first Clock notification: a change may come first.
            self.now = await self.keeper.read_chain_time()
            log.info("live feed subscribed: resyncing", cause=cause)
            self._start_resync(cause)
            self.first_attempt.set()  # after the resync began: polling stands aside
        elif isinstance(event, ClockTick):
            metrics.live_notifications.labels(kind="clock").inc()
            self.now = event.time.unix_timestamp
            self.keeper.observe_chain_time(event.time)
            self._maybe_interval_resync()
            self._maybe_horizon_resync(self.now)
            self._dispatch(self.now)
        elif isinstance(event, AccountChanged):
            await self._changed(event.account)
        elif isinstance(event, AccountClosed):
            metrics.live_notifications.labels(kind="closed").inc()
            await self._closed(event.key)

    async def _changed(self, account: RawAccount) -> None:
        kind = kind_of(account.data)
        metrics = self.keeper.metrics
        metrics.live_notifications.labels(kind=kind).inc()
        metrics.updates.labels(source="live").inc()
        if self.now is None:
            return  # no chain time yet: the resync that follows subscription sees it
        if kind == "market":
            await self._market_seen(account.key, market_terms_view(account.data))
        elif kind == "job":
            await self._job_changed(account)
        elif kind == "run":
            await self._run_changed(account)
        self._report_book()

    async def _job_changed(self, account: RawAccount) -> None:
        assert self.now is not None
        job = job_view(account.data)
        markets = self.markets
        market_key = getattr(job, "market", None)
        if market_key is not None and market_key not in markets:
            views = await discovery.market_terms(self.keeper.scope(), [market_key])
            await self._market_seen(market_key, views[market_key])
        stopped = isinstance(job, JobAccount) and job.state == JobState.STOPPED
        stake = await self._stake() if stopped else ABSENT
        self.book.job_changed(
            account.key,
            job,
            markets=markets,
            now=self.now,
            stake=stake,
            lamports=account.lamports,
        )

    async def _run_changed(self, account: RawAccount) -> None:
        assert self.now is not None
        if self.book.params.expired is None:
            return
        run = run_view(account.data)
        job_key = getattr(run, "job", None)
        if job_key is None:
            return
        jobs = await discovery.job_views(self.keeper.scope(), [job_key])
        self.book.run_changed(
            account.key, run, job=jobs[job_key], now=self.now, lamports=account.lamports
        )

    async def _stake(self) -> StakeView:
        identity = self.keeper.identity
        if identity is None or identity.claim is None:
            return ABSENT
        return await discovery.stake_of(self.keeper.scope(), identity.claim.stake)

    async def _market_seen(self, key: Pubkey, view: MarketView) -> None:
        known = key in self.markets
        self.markets[key] = view
        if isinstance(view, MarketAccount) and not known and self._feed is not None:
            await self._feed.watch(key)

    async def _closed(self, key: Pubkey) -> None:
        if key not in self.markets:
            return
        self.markets[key] = ABSENT
        if self._feed is not None:
            await self._feed.unwatch(key)
        log.info("market closed: resyncing", market=str(key))
        # Its Done jobs are cleanAdmin's now: a full read judges them with every guard.
        self._start_resync("market_closed")

    def _live_markets(self) -> set[Pubkey]:
        return {key for key, view in self.markets.items() if isinstance(view, MarketAccount)}

    # -- full reads --------------------------------------------------------------------

    def read_done(self, read: discovery.FullRead) -> None:
        """A read's findings: its markets to watch (their close is in no program feed), the
        actions it saw that fall due later (filed in the book: no read is needed then), and
        what decides whether the next interval resync may read only what changed."""
        full = read.changed_since is None
        if full:
            self.book.read_everything()
        self._changed_from = self._next_changed_from(read, full=full)
        for task, plan in read.upcoming.items():
            self.book.read_upcoming(task, plan)
        self._backlog = any(plan.waiting for plan, _findings in read.plans.values())
        self._report_book()
        if not read.markets:
            return
        if full:
            self.markets = dict(read.markets)
        else:  # only the markets written since: the others are as the full read left them
            self.markets.update(read.markets)
        if self._feed is not None:
            feed = self._feed
            watched = self._live_markets()
            self._spawn(self._watch_all(feed, watched))

    async def _watch_all(self, feed: LiveFeed, keys: set[Pubkey]) -> None:
        with contextlib.suppress(FeedLost):  # the loop sees the loss and reconnects
            for key in keys:
                await feed.watch(key)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)  # held until done: the loop keeps only weak references
        task.add_done_callback(self._background.discard)

    def _maybe_interval_resync(self) -> None:
        elapsed = time.monotonic() - self._resync_started
        if elapsed >= self.settings.resync_interval_seconds:
            self._start_resync("interval")

    def _maybe_horizon_resync(self, now: int) -> None:
        """Chain time reached the book's horizon: what it left out may be due now, and
        only a full read finds it (once per horizon: a failed read waits for the next)."""
        horizon = self.book.horizon
        if horizon is None or now < horizon or horizon == self._horizon_resynced:
            return
        self._horizon_resynced = horizon
        self._start_resync("book_horizon")

    def _start_resync(self, cause: str) -> None:
        if self._resync is not None and not self._resync.done():
            self._resync_again = self._resync_again or cause
            return
        self._resync_started = time.monotonic()
        self._resync = asyncio.create_task(self._run_resync(cause))

    def _next_changed_from(
        self, read: discovery.FullRead, *, full: bool
    ) -> tuple[int, frozenset[Pubkey]] | None:
        """The next changed read starts at this read's slot when it read every task (a
        changed read carries the jobs with runs forward: a run closed since is not seen, so
        its job stays out of claim until a full read). Held jobs are bounded like the book:
        past ``max_scheduled`` the next interval resync is a full read."""
        if not set(read.plans) >= set(self.keeper.enabled_tasks()) or read.since is None:
            return self._changed_from
        if full or self._changed_from is None:
            with_runs = frozenset(read.jobs_with_runs)
        else:
            with_runs = self._changed_from[1] | read.jobs_with_runs
        if len(with_runs) > self.settings.max_scheduled:
            return None
        return (read.since, with_runs)

    def changed_read_from(self, cause: str) -> tuple[int, frozenset[Pubkey]] | None:
        """Where a resync for ``cause`` may read only the accounts changed since (the last
        whole read's slot and run jobs), or None when it must read everything: other causes
        (a reconnect may have missed anything, and a changed read never shows a close),
        standard scans, no full read yet, a backlog waiting, or chain time at the book's
        horizon (what it left out may be due: a changed read would not see it)."""
        paginated = self.keeper.settings.rpc.scan_method == ScanMethod.PAGINATED.value
        if cause != "interval" or not paginated or self._backlog or self.now is None:
            return None
        if not self.book.holds_everything_at(self.now):
            return None
        return self._changed_from

    async def _run_resync(self, cause: str) -> None:
        keeper = self.keeper
        keeper.metrics.resyncs.labels(cause=cause).inc()
        tasks = keeper.enabled_tasks()
        changed = self.changed_read_from(cause)
        keeper.metrics.resync_reads.labels(kind="full" if changed is None else "changed").inc()
        if changed is None:
            reports = await keeper.run_tasks(tasks)
        else:
            since, jobs_with_runs = changed
            log.info("live: interval resync of what changed", since_slot=since)
            reports = await keeper.run_tasks(
                tasks, changed_since=since, jobs_with_runs=jobs_with_runs
            )
        failed = [error for report in reports for error in report.errors]
        if failed:
            log.warning("resync failed: polling until one succeeds", cause=cause, errors=failed)
            self.following = False
        else:
            self.following = self._connected
            if self.following:
                self.down_since = None
                self.last_error = None
            keeper.live_resynced(tasks)
        again, self._resync_again = self._resync_again, None
        if again is not None and self._connected:
            self._resync_started = time.monotonic()
            self._resync = asyncio.create_task(self._run_resync(again))

    # -- sending what is due -------------------------------------------------------------

    def timer(self) -> None:
        """The scheduler's tick while the feed is in charge: resyncs that are due, and a
        takeover, are noticed even when no clock notification arrives."""
        self._check_sender()
        self._maybe_interval_resync()

    def _check_sender(self) -> bool:
        """Whether due actions may be handed out now. A standby keeps them in its book
        (handed out, they would be dropped unsent); on taking over, a resync sends what
        waited meanwhile."""
        if not self._may_send():
            self._was_sender = False
            return False
        if not self._was_sender:
            self._was_sender = True
            log.info("live: now sending: resyncing for what waited", cause="leadership")
            self._start_resync("leadership")
        return True

    def _dispatch(self, now: int) -> None:
        if not self._check_sender():
            return
        for task in self.keeper.enabled_tasks():
            busy = self._sending.get(task)
            if busy is not None and not busy.done():
                continue  # one batch per task at a time; the rest stays due
            limit = self.keeper.task_settings(task).max_actions_per_pass
            due = self.book.pop_due(task, now, limit)
            if due:
                self._sending[task] = asyncio.create_task(self._send(task, due, now))
        self._report_book()

    def _may_send(self) -> bool:
        return self.keeper.dry_run or self.keeper.leadership.may_send()

    async def _send(self, task: Task, due: list[tuple[Action, int]], now: int) -> None:
        keeper = self.keeper
        plan = Plan(task=task, actions=tuple(action for action, _ in due))
        try:
            plan = await keeper.screen(plan, now)
            for action in plan.actions:
                keeper.metrics.actions_planned.labels(
                    action=action.kind, reason=action.reason
                ).inc()
            log.info("live: due", task=str(task), actions=len(plan.actions), chain_time=now)
            if keeper.dry_run:
                for line in dry_run_lines(plan):
                    print(line, file=keeper.out, flush=True)
                return
            assert keeper.executor is not None
            report = PassReport(task=str(task))
            deadline = asyncio.get_running_loop().time() + (
                keeper.settings.schedule.pass_deadline_seconds
            )
            await keeper.refresh_balance()
            limit = keeper.task_settings(task).max_actions_per_pass
            await keeper.executor.execute(plan, report, limit, deadline=deadline)
            log.info(
                "live: sent",
                task=str(task),
                confirmed=report.confirmed,
                failed=report.failed,
                skipped=dict(report.skipped),
            )
        except Exception:  # the next resync finds what is left
            log.exception("live send failed: the next full read retries", task=str(task))
            keeper.metrics.pass_errors.labels(task=task).inc()

    def _report_book(self) -> None:
        metrics = self.keeper.metrics
        for task, size in self.book.sizes().items():
            metrics.live_scheduled.labels(task=task).set(size)
        for task, count in self.book.overflow.items():
            if count:  # left out: the book's horizon says when a full read must find it
                metrics.live_overflow.labels(task=task).inc(count)
        self.book.overflow.clear()
