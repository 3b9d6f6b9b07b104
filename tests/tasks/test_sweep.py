"""The sweep: jobs fed in any batches give each task the plan its own decision gives
over the fully decoded accounts, kept to the limit (the earliest due)."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from solders.pubkey import Pubkey
from task_factories import IDENTITY, KEEPER, job, key, market, stake

from keeper.program import batch, layouts
from keeper.program.layouts import JobAccount
from keeper.tasks import finished_jobs, stopped_jobs
from keeper.tasks.plan import Reason, Task, combine
from keeper.tasks.sweep import JobSweep, SweepParams
from keeper.tasks.views import ABSENT, MarketView

LIVE, GONE = key("live market"), key("gone market")
MARKETS: dict[Pubkey, MarketView] = {LIVE: market(job_expiration=100), GONE: ABSENT}
FINISHED = finished_jobs.FinishedJobsParams(is_admin=True)
STOPPED = stopped_jobs.StoppedJobsParams(claim_enabled=True, identity=IDENTITY, payer=KEEPER)

jobs_strategy = st.lists(
    st.builds(
        job,
        market=st.sampled_from([LIVE, GONE]),
        payer=st.integers(0, 3).map(key),
        state=st.sampled_from([0, 2, 3, 7]),
        time_end=st.integers(0, 400),
        timeout=st.one_of(st.none(), st.just(3_600)),  # None: a legacy 232-byte job
    ),
    max_size=40,
)


def _feed(sweep: JobSweep, jobs: list[JobAccount], cuts: list[int]) -> None:
    part = batch.JOB_READ_SLICE
    edges = sorted({0, len(jobs), *(c % (len(jobs) + 1) for c in cuts)})
    for start, stop in itertools.pairwise(edges):
        chunk = jobs[start:stop]
        data = b"".join(layouts.encode_job(j)[part.offset : part.end] for j in chunk)
        keys = b"".join(bytes(key(f"job {start + i}")) for i in range(len(chunk)))
        records = batch.decode_jobs(data, part)
        assert not sweep.missing_markets(records)
        sweep.feed(
            np.frombuffer(keys, dtype=np.uint8).reshape(-1, 32),
            records,
            np.array([j.is_legacy for j in chunk], dtype=np.bool_),
        )


@settings(max_examples=150, deadline=None)
@given(jobs_strategy, st.lists(st.integers(0, 40), max_size=5), st.integers(1, 8))
def test_the_sweep_decides_as_each_task_does_on_whole_accounts(
    jobs: list[JobAccount], cuts: list[int], limit: int
) -> None:
    params = SweepParams(
        now=300, finished=FINISHED, stopped=STOPPED, finished_limit=limit, stopped_limit=limit
    )
    sweep = JobSweep(params, dict(MARKETS))
    _feed(sweep, jobs, cuts)
    keyed = [(key(f"job {i}"), j) for i, j in enumerate(jobs)]

    done = [(k, j) for k, j in keyed if j.state == 2 and not j.is_legacy]
    expected = combine(
        Task.FINISHED_JOBS,
        [finished_jobs.decide_jobs(done, markets=MARKETS, now=300, params=FINISHED)],
        limit,
    )
    finished = sweep.finished_plan(jobs_with_runs=set())
    assert finished.actions == expected.actions
    assert finished.waiting == expected.waiting
    # Legacy Stopped jobs are the stopped task's count: each legacy job counted once.
    assert finished.skips[Reason.LEGACY_LAYOUT] == sum(j.is_legacy and j.state != 3 for j in jobs)
    odd = sum(not j.is_legacy and j.state not in {0, 2, 3} for j in jobs)
    assert finished.skips[Reason.UNKNOWN_STATE] == odd
    queued = {k for k, j in keyed if j.state == 0 and not j.is_legacy}
    assert set(finished.orphans) == queued  # no run, no market queue: every one an orphan

    mine = stake(authority=IDENTITY.authority, xnos=10**12)
    stopped_views = [(k, j) for k, j in keyed if j.state == 3]
    claims = stopped_jobs.decide(
        stopped_views, jobs_with_runs=set(), markets=MARKETS, params=STOPPED, stake=mine
    )
    plan = sweep.stopped_plan(jobs_with_runs=set(), stake=mine)
    assert plan.actions == combine(Task.STOPPED_JOBS, [claims], limit).actions
    assert plan.skips == Counter(claims.skips)
