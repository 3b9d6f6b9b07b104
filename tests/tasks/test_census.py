"""Census: every left-alone job counted once, by reason; orphans named."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from task_factories import JOB, JOB_KEYS, JOB_VIEWS, MARKET, MARKET_VIEWS, job, key, market

from keeper.program import layouts
from keeper.program.state import JobState
from keeper.tasks.census import census, classify_job, queued_jobs
from keeper.tasks.plan import Reason, Task
from keeper.tasks.views import ABSENT, Foreign, market_view

QUEUED = job(state=JobState.QUEUED)


def test_classify_each_left_alone_case() -> None:
    assert classify_job(ABSENT) is Reason.ALREADY_CLOSED
    assert classify_job(Foreign()) is Reason.UNDECODABLE
    assert classify_job(job(timeout=None)) is Reason.LEGACY_LAYOUT
    assert classify_job(job(timeout=None, state=1)) is Reason.LEGACY_LAYOUT
    assert classify_job(job(state=1)) is Reason.UNKNOWN_STATE
    assert classify_job(job(state=7)) is Reason.UNKNOWN_STATE
    assert classify_job(QUEUED) is Reason.QUEUED
    assert classify_job(job(state=JobState.DONE)) is None
    assert classify_job(job(state=JobState.STOPPED)) is None


def _census(queued: layouts.JobAccount, *, runs: set[object] | None = None, view: object = None):
    markets = {MARKET: market(queue=(JOB,)) if view is None else view}
    return census([(JOB, queued)], jobs_with_runs=runs or set(), markets=markets)  # type: ignore[arg-type]


def test_queued_job_in_its_market_queue() -> None:
    plan = _census(QUEUED)
    assert plan.task is Task.CENSUS
    assert plan.skips == {Reason.QUEUED: 1}
    assert plan.orphans == ()
    assert plan.actions == ()


def test_queued_job_with_a_run_is_running() -> None:
    plan = _census(QUEUED, runs={JOB}, view=market())
    assert plan.skips == {Reason.JOB_RUNNING: 1}


def test_orphan_not_in_queue() -> None:
    plan = _census(QUEUED, view=market(queue=(key("other"),)))
    assert plan.orphans == (JOB,)
    assert plan.skips == {Reason.ORPHAN: 1}


def test_orphan_when_market_is_gone_or_foreign() -> None:
    assert _census(QUEUED, view=ABSENT).orphans == (JOB,)
    assert _census(QUEUED, view=Foreign()).orphans == (JOB,)


def test_orphan_in_a_job_type_255_market_even_if_listed() -> None:
    plan = _census(QUEUED, view=market(job_type=255, queue=(JOB,)))
    assert plan.orphans == (JOB,)


def test_stale_tail_of_the_queue_is_not_the_queue() -> None:
    # The market's queue shrank: the job's key is still in the bytes after `length`.
    data = layouts.encode_market(market(queue=(key("other"),)), stale_tail=(JOB,))
    assert JOB not in queued_jobs(market_view(data))
    plan = _census(QUEUED, view=market_view(data))
    assert plan.orphans == (JOB,)


def test_done_and_stopped_jobs_are_task_work_not_counted() -> None:
    jobs = [(key(1), job(state=JobState.DONE)), (key(2), job(state=JobState.STOPPED))]
    plan = census(jobs, jobs_with_runs=set(), markets={})
    assert plan.skips == {}


def test_every_leave_alone_reason_counted() -> None:
    jobs = [
        (key(1), job(timeout=None)),
        (key(2), job(state=9)),
        (key(3), Foreign("not a job")),
        (key(4), ABSENT),
    ]
    plan = census(jobs, jobs_with_runs=set(), markets={})
    assert plan.skips == {
        Reason.LEGACY_LAYOUT: 1,
        Reason.UNKNOWN_STATE: 1,
        Reason.UNDECODABLE: 1,
        Reason.ALREADY_CLOSED: 1,
    }


def test_unfetched_market_of_a_queued_job_is_an_error() -> None:
    with pytest.raises(KeyError, match="market"):
        census([(JOB, QUEUED)], jobs_with_runs=set(), markets={})


@given(
    st.dictionaries(JOB_KEYS, JOB_VIEWS, max_size=8),
    st.sets(JOB_KEYS),
    st.dictionaries(st.integers(0, 2).map(lambda i: key(f"market {i}")), MARKET_VIEWS),
)
def test_census_counts_each_left_alone_job_once_and_never_acts(jobs, runs, fetched) -> None:
    markets = {key(f"market {i}"): ABSENT for i in range(3)} | fetched
    plan = census(list(jobs.items()), jobs_with_runs=runs, markets=markets)
    left_alone = [k for k, view in jobs.items() if classify_job(view) is not None]
    assert plan.actions == ()
    assert sum(plan.skips.values()) == len(left_alone)
    for orphan in plan.orphans:
        view = jobs[orphan]
        assert isinstance(view, layouts.JobAccount)
        assert view.state == JobState.QUEUED
        assert orphan not in runs
        assert orphan not in queued_jobs(markets[view.market])
