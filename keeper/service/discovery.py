"""Discovery: one read of each account kind per pass (chain I/O), feeding every task's
pure decision from the same snapshot.

An RPC node walks every account of the program for each getProgramAccounts, whatever
its filter, so a full pass makes at most three: the MarketAccounts, the RunAccounts and
the JobAccounts (one ``dataSlice`` covering what every task reads), whatever the number
of markets or tasks; a pass reads only the kinds its tasks need. Jobs stream through a
``JobSweep`` chunk by chunk, so memory follows the plans (bounded by
``max_actions_per_pass``), not the number of jobs. Cross-reference reads (the jobs of
runs, gone markets, the node's stake) are getMultipleAccounts/getAccountInfo.

With ``rpc.scan_method: paginated`` each of those reads walks getProgramAccountsV2 pages
instead (still one logical read per kind) and ``FullRead.since`` keeps the slot a later
read of only the accounts changed since may start from (``changed_read``,
``changed_jobs``, ``read_runs``/``read_markets`` with ``changed_since``). Such a read never
shows a closed account, and sees only accounts *written* since: a Done job that merely
expires, or a run that merely times out, is not in it (the caller keeps what it learnt
before, or runs a full read).

Answers are not trusted blindly: a key given twice is dropped and counted (the chain
layer), records of the wrong length are undecodable and counted, and a read in which most
records are malformed (an RPC that ignores ``dataSlice`` or cuts data short) fails the
pass with the reason instead of passing with nothing found.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Collection, Iterable
from dataclasses import dataclass, field
from typing import Final

import numpy as np
from solders.pubkey import Pubkey

from keeper.chain.accounts import RawAccount, get_account, get_multiple_accounts
from keeper.chain.endpoints import Rpc
from keeper.chain.pages import (
    PAGE_LIMIT_MAX,
    ScanMark,
    ScanMethod,
    ScanOptions,
    scan_program_accounts,
)
from keeper.chain.scan import AccountChunk, ScanObserver, observed
from keeper.errors import DecodeError
from keeper.program import filters
from keeper.program.batch import JOB_READ_SLICE, StructArray, decode_jobs
from keeper.program.ids import STAKING_PROGRAM
from keeper.program.layouts import (
    LEGACY_JOB_ALLOCATED_SIZE,
    MARKET_ALLOCATED_SIZE,
    RUN_ALLOCATED_SIZE,
    RunAccount,
    decode_run,
)
from keeper.tasks import expired_runs, finished_jobs, stopped_jobs
from keeper.tasks.plan import Plan, PlanBuilder, Reason, Task
from keeper.tasks.sweep import JobSweep, SweepParams
from keeper.tasks.views import (
    ABSENT,
    Foreign,
    JobView,
    MarketView,
    RunView,
    StakeView,
    job_view,
    market_terms_view,
    market_view,
    run_view,
    stake_view,
)

# A read in which more than this share of records is malformed fails the pass.
MALFORMED_SHARE_LIMIT: Final = 0.5


@dataclass(frozen=True, slots=True)
class Scope:
    """What every scan needs: the client, the program, the chunk size and the scan method
    (``rpc.scan_method``, with ``rpc.scan_page_limit`` for pages)."""

    rpc: Rpc
    program_id: Pubkey
    chunk_size: int
    scan_method: ScanMethod = ScanMethod.STANDARD
    page_limit: int = PAGE_LIMIT_MAX

    def scan_options(self) -> ScanOptions:
        return ScanOptions(self.scan_method, self.chunk_size, self.page_limit)

    observer: ScanObserver | None = None  # a progress display, on a terminal


@dataclass(slots=True)
class Findings:
    """Counts beside a plan, for gauges: accounts seen by kind, legacy and orphan jobs."""

    seen: dict[str, int] = field(default_factory=dict)
    legacy_jobs: int | None = None
    orphan_jobs: int | None = None


@dataclass(frozen=True, slots=True)
class PassRequest:
    """The tasks of one pass: a task's params when it runs, else None; ``limits``: each
    task's ``max_actions_per_pass``."""

    now: int
    expired_runs: expired_runs.ExpiredRunsParams | None = None
    stopped_jobs: stopped_jobs.StoppedJobsParams | None = None
    finished_jobs: finished_jobs.FinishedJobsParams | None = None
    limits: dict[Task, int] = field(default_factory=dict)
    # Live mode: also keep this many not-yet-due cleans and quits per task (FullRead.upcoming).
    upcoming_limit: int | None = None


@dataclass(slots=True)
class FullRead:
    """What one pass read and decided. ``duplicates``/``undecodable``: by account kind;
    ``scans``: logical scans (one per account kind read; a paginated one is many pages:
    ``mark.pages``); ``mark``: the pages' context slots."""

    plans: dict[Task, tuple[Plan, Findings]] = field(default_factory=dict)
    duplicates: Counter[str] = field(default_factory=Counter)
    undecodable: Counter[str] = field(default_factory=Counter)
    scans: int = 0
    mark: ScanMark = field(default_factory=ScanMark)
    accounts: Counter[str] = field(default_factory=Counter)  # returned, by kind
    markets: dict[Pubkey, MarketView] = field(default_factory=dict)  # every market read
    # With ``PassRequest.upcoming_limit``: the actions not yet due, by task (bounded: the
    # earliest due; what did not fit is each plan's ``waiting``).
    upcoming: dict[Task, Plan] = field(default_factory=dict)
    jobs_with_runs: set[Pubkey] = field(default_factory=set)  # jobs some run read points at
    changed_since: int | None = None  # a changed_read's slot; None for a full read

    @property
    def since(self) -> int | None:
        """The slot a read of what changed after this one starts from (``changedSinceSlot``,
        inclusive): the lowest context slot of its pages. None with standard scans."""
        return self.mark.since


def _scan(  # noqa: PLR0913 - a scan's own parameters
    scope: Scope,
    read: FullRead,
    account_filters: list[filters.Filter],
    data_slice: filters.DataSliceParam | None,
    record_size: int,
    *,
    changed_since: int | None,
    what: str = "accounts",
) -> AsyncIterator[AccountChunk]:
    """One logical scan by the configured method, counted in ``read``; ``what`` names it
    to the scope's progress observer."""
    read.scans += 1
    chunks = scan_program_accounts(
        scope.rpc,
        scope.program_id,
        account_filters,
        data_slice,
        record_size=record_size,
        options=scope.scan_options(),
        changed_since_slot=changed_since,
        mark=read.mark,
    )
    return chunks if scope.observer is None else observed(chunks, scope.observer, what)


def _owned(raw: RawAccount | None, owner: Pubkey) -> bool:
    return raw is None or raw.owner == owner


def _data(raw: RawAccount | None) -> bytes | None:
    return None if raw is None else raw.data


async def _views(
    scope: Scope, keys: Iterable[Pubkey], data_slice: filters.DataSliceParam | None = None
) -> dict[Pubkey, RawAccount | None]:
    unique = list(dict.fromkeys(keys))
    raws = await get_multiple_accounts(scope.rpc, unique, data_slice=data_slice)
    return dict(zip(unique, raws, strict=True))


async def job_views(scope: Scope, keys: Iterable[Pubkey]) -> dict[Pubkey, JobView]:
    raws = await _views(scope, keys)
    return {
        key: job_view(_data(raw), owned=_owned(raw, scope.program_id)) for key, raw in raws.items()
    }


async def run_views(scope: Scope, keys: Iterable[Pubkey]) -> dict[Pubkey, RunView]:
    raws = await _views(scope, keys)
    return {
        key: run_view(_data(raw), owned=_owned(raw, scope.program_id)) for key, raw in raws.items()
    }


async def market_views(scope: Scope, keys: Iterable[Pubkey]) -> dict[Pubkey, MarketView]:
    raws = await _views(scope, keys)
    return {
        key: market_view(_data(raw), owned=_owned(raw, scope.program_id))
        for key, raw in raws.items()
    }


async def market_terms(scope: Scope, keys: Iterable[Pubkey]) -> dict[Pubkey, MarketView]:
    """The markets' terms only (a ``dataSlice`` of 147 bytes, not 10,224): for re-checks
    and live decisions, which never read the queue (the census does: ``market_views``)."""
    raws = await _views(scope, keys, filters.market_terms())
    return {
        key: market_terms_view(_data(raw), owned=_owned(raw, scope.program_id))
        for key, raw in raws.items()
    }


async def stake_of(scope: Scope, stake: Pubkey) -> StakeView:
    raw = await get_account(scope.rpc, stake)
    return stake_view(_data(raw), owned=_owned(raw, STAKING_PROGRAM))


def _records(chunk: AccountChunk) -> Iterable[tuple[Pubkey, bytes]]:
    size = chunk.record_size
    for index in range(len(chunk)):
        yield chunk.key(index), chunk.data[index * size : (index + 1) * size]
    yield from chunk.odd


def _check_malformed(kind: str, malformed: int, total: int, expected: str) -> None:
    """Fail a read in which most records are malformed: finding nothing would be a lie."""
    if total and malformed > MALFORMED_SHARE_LIMIT * total:
        raise DecodeError(
            f"getProgramAccounts of {kind} accounts: {malformed} of {total} records are not "
            f"{expected}: the RPC ignores dataSlice or cuts account data short",
            hint="point rpc.url at a node that honours dataSlice (any current Agave or "
            "provider node does); nothing was decided from this answer",
        )


async def read_markets(
    scope: Scope, read: FullRead, *, changed_since: int | None = None
) -> dict[Pubkey, MarketView]:
    """Every MarketAccount (full data: queues for the census), or with ``changed_since``
    those written at or after that slot. Legacy 3,376-byte markets arrive as odd records
    and decode; anything else is ``Foreign`` and counted."""
    markets: dict[Pubkey, MarketView] = {}
    scan = _scan(
        scope,
        read,
        filters.all_markets(),
        None,
        MARKET_ALLOCATED_SIZE,
        changed_since=changed_since,
        what="markets",
    )
    async for chunk in scan:
        read.duplicates["market"] += chunk.duplicates
        for key, data in _records(chunk):
            markets[key] = market_view(data)
    bad = sum(1 for view in markets.values() if isinstance(view, Foreign))
    read.accounts["market"] += len(markets)
    read.markets = markets
    read.undecodable["market"] += bad
    _check_malformed("Market", bad, len(markets), "whole MarketAccounts")
    return markets


@dataclass(slots=True)
class Runs:
    runs: list[tuple[Pubkey, RunAccount]] = field(default_factory=list)
    undecodable: int = 0

    def jobs(self) -> set[Pubkey]:
        """Every job some RunAccount points at."""
        return {run.job for _key, run in self.runs}


async def read_runs(scope: Scope, read: FullRead, *, changed_since: int | None = None) -> Runs:
    """Every RunAccount, whole (120 bytes), or with ``changed_since`` those written at or
    after that slot (a run closed since is simply absent)."""
    found = Runs()
    scan = _scan(
        scope,
        read,
        filters.all_runs(),
        None,
        RUN_ALLOCATED_SIZE,
        changed_since=changed_since,
        what="runs",
    )
    async for chunk in scan:
        read.duplicates["run"] += chunk.duplicates
        for key, data in _records(chunk):
            try:
                found.runs.append((key, decode_run(data)))
            except DecodeError:
                found.undecodable += 1
    read.undecodable["run"] += found.undecodable
    total = len(found.runs) + found.undecodable
    read.accounts["run"] += total
    _check_malformed("Run", found.undecodable, total, f"{RUN_ALLOCATED_SIZE} bytes")
    return found


async def legacy_job_keys(
    scope: Scope, read: FullRead, *, changed_since: int | None = None
) -> set[bytes]:
    """Keys of the 232-byte jobs (keys only cross the wire): for a node whose answers do
    not give each account's ``space``."""
    keys: set[bytes] = set()
    legacy: list[filters.Filter] = [filters.is_job(), filters.data_size(LEGACY_JOB_ALLOCATED_SIZE)]
    async for chunk in _scan(
        scope, read, legacy, filters.no_data(), 0, changed_since=changed_since
    ):
        keys.update(bytes(key) for key, _data in _records(chunk))
    return keys


@dataclass(frozen=True, slots=True)
class JobBatch:
    """Jobs of one chunk, decoded: what ``JobSweep.feed`` takes. ``keys`` (n, 32);
    ``records`` decoded with ``JOB_READ_SLICE``; ``legacy`` True for 232-byte jobs;
    ``undecodable``: records of the wrong length beside them (counted, not judged)."""

    keys: np.typing.NDArray[np.uint8]
    records: StructArray
    legacy: np.typing.NDArray[np.bool_]
    undecodable: int = 0


async def job_batches(
    scope: Scope, read: FullRead, *, changed_since: int | None = None
) -> AsyncIterator[JobBatch]:
    """Every JobAccount once (or those written at or after ``changed_since``), decoded
    chunk by chunk. A read in which most records are malformed fails at its end."""
    legacy_keys: set[bytes] | None = None
    malformed = total = 0
    job_slice = filters.data_slice(JOB_READ_SLICE)
    scan = _scan(
        scope,
        read,
        [filters.is_job()],
        job_slice,
        JOB_READ_SLICE.length,
        changed_since=changed_since,
        what="jobs",
    )
    async for chunk in scan:
        read.duplicates["job"] += chunk.duplicates
        malformed += len(chunk.odd)
        total += len(chunk) + len(chunk.odd)
        keys = chunk.key_array()
        records = decode_jobs(chunk.data, JOB_READ_SLICE)
        spaces = chunk.space_array()
        if not len(chunk):
            legacy = np.zeros(0, dtype=np.bool_)
        elif spaces is not None:
            legacy = spaces == LEGACY_JOB_ALLOCATED_SIZE
        else:
            if legacy_keys is None:
                legacy_keys = await legacy_job_keys(scope, read, changed_since=changed_since)
            legacy = np.fromiter(
                (row.tobytes() in legacy_keys for row in keys), dtype=np.bool_, count=len(keys)
            )
        yield JobBatch(keys, records, legacy, undecodable=len(chunk.odd))
    read.undecodable["job"] += malformed
    read.accounts["job"] += total
    _check_malformed("Job", malformed, total, f"{JOB_READ_SLICE.length} bytes")


async def feed_sweep(scope: Scope, sweep: JobSweep, batch: JobBatch) -> None:
    """One batch into ``sweep``, fetching first the markets it names that the sweep lacks."""
    sweep.undecodable(batch.undecodable)
    if not len(batch.records):
        return
    missing = sweep.missing_markets(batch.records)
    if missing:
        sweep.markets.update(await market_views(scope, missing))
    sweep.feed(batch.keys, batch.records, batch.legacy)


async def sweep_jobs(
    scope: Scope, sweep: JobSweep, read: FullRead, *, changed_since: int | None = None
) -> None:
    """Every JobAccount once (or those changed since a slot), ``JOB_READ_SLICE`` of each,
    into ``sweep``."""
    async for batch in job_batches(scope, read, changed_since=changed_since):
        await feed_sweep(scope, sweep, batch)


async def full_read(scope: Scope, request: PassRequest) -> FullRead:
    """Read what the pass's tasks need, each account kind once, and decide every task."""
    return await _read_and_decide(scope, request, changed_since=None, known_runs=())


async def changed_read(
    scope: Scope, request: PassRequest, since: int, *, jobs_with_runs: Collection[Pubkey]
) -> FullRead:
    """The same decisions over only the accounts written at or after slot ``since`` (a
    previous read's ``FullRead.since``): needs ``rpc.scan_method: paginated``.

    Its limits: a closed account never appears (a market closed since is learnt when a
    changed job names it and getMultipleAccounts finds it gone; a closed run is not
    learnt); an account that did not change is not judged, so a Done job that merely
    expired or a run that merely timed out since is not in the plan (schedule those from
    what was read before, or run a full read); the findings count changed accounts only.
    ``jobs_with_runs``: every job a RunAccount pointed at in the last full read; the
    changed runs' jobs are added, so a claim never forgets a run that did not change
    (a run closed since keeps its job from claim until the next full read: the safe side).
    """
    return await _read_and_decide(scope, request, changed_since=since, known_runs=jobs_with_runs)


async def _read_and_decide(
    scope: Scope,
    request: PassRequest,
    *,
    changed_since: int | None,
    known_runs: Collection[Pubkey],
) -> FullRead:
    read = FullRead(changed_since=changed_since)
    since = changed_since
    jobs_needed = request.stopped_jobs is not None or request.finished_jobs is not None
    markets = await read_markets(scope, read, changed_since=since) if jobs_needed else {}
    runs = Runs()
    if jobs_needed or request.expired_runs:
        runs = await read_runs(scope, read, changed_since=since)
    read.jobs_with_runs = runs.jobs() | set(known_runs)
    if request.expired_runs is not None:
        read.plans[Task.EXPIRED_RUNS] = await _plan_expired_runs(scope, runs, request, read)
    if not jobs_needed:
        return read
    sweep = JobSweep(
        SweepParams(
            now=request.now,
            finished=request.finished_jobs,
            stopped=request.stopped_jobs,
            finished_limit=request.limits.get(Task.FINISHED_JOBS),
            stopped_limit=request.limits.get(Task.STOPPED_JOBS),
            upcoming_limit=request.upcoming_limit,
        ),
        markets,
    )
    live_markets = len(markets)
    await sweep_jobs(scope, sweep, read, changed_since=since)
    with_runs = read.jobs_with_runs
    if request.finished_jobs is not None:
        missing = sweep.queued_markets_missing()
        if missing:
            markets.update(await market_views(scope, missing))
        plan = sweep.finished_plan(jobs_with_runs=with_runs)
        findings = Findings(
            seen={"market": live_markets, "job": sweep.jobs, "done_job": sweep.done},
            legacy_jobs=sweep.legacy,
            orphan_jobs=len(plan.orphans),
        )
        read.plans[Task.FINISHED_JOBS] = (plan, findings)
        upcoming = sweep.upcoming_plan()
        if upcoming is not None:
            read.upcoming[Task.FINISHED_JOBS] = upcoming
    if request.stopped_jobs is not None:
        read.plans[Task.STOPPED_JOBS] = await _plan_stopped_jobs(
            scope, sweep, with_runs, request.stopped_jobs
        )
    return read


async def _plan_expired_runs(
    scope: Scope, runs: Runs, request: PassRequest, read: FullRead
) -> tuple[Plan, Findings]:
    params = request.expired_runs
    assert params is not None
    jobs = await job_views(scope, (run.job for _key, run in runs.runs))
    plan = expired_runs.decide(
        runs.runs, jobs, request.now, params, limit=request.limits.get(Task.EXPIRED_RUNS)
    )
    if request.upcoming_limit is not None:
        read.upcoming[Task.EXPIRED_RUNS] = expired_runs.upcoming(
            runs.runs, jobs, request.now, params, limit=request.upcoming_limit
        )
    extra = PlanBuilder(Task.EXPIRED_RUNS)
    extra.skip(Reason.UNDECODABLE, runs.undecodable)
    return plan.merge(extra.build()), Findings(seen={"run": len(runs.runs)})


async def _plan_stopped_jobs(
    scope: Scope, sweep: JobSweep, with_runs: set[Pubkey], params: stopped_jobs.StoppedJobsParams
) -> tuple[Plan, Findings]:
    missing = sweep.stopped_markets_missing()
    if missing:
        sweep.markets.update(await market_views(scope, missing))
    stake: StakeView = ABSENT
    if params.identity is not None:
        stake = await stake_of(scope, params.identity.stake)
    plan = sweep.stopped_plan(jobs_with_runs=with_runs, stake=stake)
    return plan, Findings(seen={"stopped_job": len(sweep.stopped)})
