"""The live book: notifications judged by the tasks' own rules, handed out exactly when
chain time reaches their due second, never before; bounded; chain time only."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from keeper.program.instructions import MaintenanceInstruction
from keeper.program.state import JobState
from keeper.tasks import expired_runs, finished_jobs
from keeper.tasks.expired_runs import ExpiredRunsParams
from keeper.tasks.finished_jobs import FinishedJobsParams
from keeper.tasks.live import LiveBook, LiveParams
from keeper.tasks.plan import PlanBuilder, Reason, Task
from keeper.tasks.stopped_jobs import StoppedJobsParams
from keeper.tasks.views import ABSENT
from tests.tasks import task_factories as factories

ADMIN = FinishedJobsParams(is_admin=True)
NOT_ADMIN = FinishedJobsParams(is_admin=False)
QUIT = ExpiredRunsParams(is_admin=True, grace_seconds=300)
CLAIM = StoppedJobsParams(claim_enabled=True, identity=factories.IDENTITY, payer=factories.KEEPER)
MARKETS = {factories.MARKET: factories.market(job_expiration=86_400)}

times = st.integers(min_value=0, max_value=2**40)


def book(**params: object) -> LiveBook:
    return LiveBook(LiveParams(**params))  # type: ignore[arg-type]


@given(time_end=times, seen_at=times, later=st.integers(0, 10**6))
def test_a_done_job_is_handed_out_at_the_first_second_clean_accepts_it(
    time_end: int, seen_at: int, later: int
) -> None:
    live = book(finished=ADMIN)
    job = factories.job(state=JobState.DONE, time_end=time_end)
    live.job_changed(factories.JOB, job, markets=MARKETS, now=seen_at)
    due = live.due_at(Task.FINISHED_JOBS, factories.JOB)
    assert due == max(seen_at, time_end + 86_400 + 1)
    assert live.pop_due(Task.FINISHED_JOBS, due - 1) == []  # never a second early
    # ... and then exactly what a pass at that chain time would plan.
    (action, when), *rest = live.pop_due(Task.FINISHED_JOBS, due + later)
    assert rest == []
    assert when == due
    expected = finished_jobs.decide_jobs(
        [(factories.JOB, job)], markets=MARKETS, now=due, params=ADMIN
    ).actions
    assert (action,) == expected
    assert finished_jobs.is_expired(86_400, time_end, when)
    assert live.sizes()[Task.FINISHED_JOBS] == 0


def test_cleanadmin_is_filed_only_for_a_done_job_whose_market_is_gone() -> None:
    gone = {factories.MARKET: ABSENT}
    for state in (JobState.QUEUED, JobState.STOPPED):
        live = book(finished=ADMIN)
        live.job_changed(factories.JOB, factories.job(state=state), markets=gone, now=5)
        assert live.sizes()[Task.FINISHED_JOBS] == 0
    live = book(finished=ADMIN)
    live.job_changed(factories.JOB, factories.job(state=JobState.DONE), markets=gone, now=5)
    [(action, due)] = live.pop_due(Task.FINISHED_JOBS, 5)
    assert (action.kind, action.reason, due) == (
        MaintenanceInstruction.CLEAN_ADMIN,
        Reason.MARKET_GONE,
        5,
    )
    live = book(finished=NOT_ADMIN)
    live.job_changed(factories.JOB, factories.job(state=JobState.DONE), markets=gone, now=5)
    assert live.pop_due(Task.FINISHED_JOBS, 10**12) == []
    assert live.skips[Reason.NOT_ADMIN] == 1


def test_legacy_jobs_are_never_filed() -> None:
    live = book(finished=ADMIN, stopped=CLAIM)
    for state in (JobState.DONE, JobState.STOPPED):
        legacy = factories.legacy_job(state=state)
        live.job_changed(factories.JOB, legacy, markets=MARKETS, now=10**9)
    assert live.sizes() == dict.fromkeys(live.sizes(), 0)


@given(run_time=times, timeout=st.integers(0, 10**6), seen_at=times)
def test_a_run_is_handed_out_when_it_times_out_past_grace(
    run_time: int, timeout: int, seen_at: int
) -> None:
    live = book(expired=QUIT)
    job = factories.job(state=JobState.QUEUED, timeout=timeout)
    live.run_changed(factories.RUN, factories.run(time=run_time), job=job, now=seen_at)
    due = max(seen_at, run_time + timeout + 300 + 1)
    assert live.due_at(Task.EXPIRED_RUNS, factories.RUN) == due
    assert live.pop_due(Task.EXPIRED_RUNS, due - 1) == []
    [(action, when)] = live.pop_due(Task.EXPIRED_RUNS, due)
    assert (action.kind, action.account, when) == (
        MaintenanceInstruction.QUIT_ADMIN,
        factories.RUN,
        due,
    )


def test_a_run_whose_job_is_done_or_gone_is_due_at_once() -> None:
    for job, reason in (
        (factories.job(state=JobState.DONE), Reason.RUN_JOB_DONE),
        (ABSENT, Reason.RUN_JOB_MISSING),
    ):
        live = book(expired=QUIT)
        live.run_changed(factories.RUN, factories.run(time=10), job=job, now=50)
        [(action, due)] = live.pop_due(Task.EXPIRED_RUNS, 50)
        assert (action.reason, due) == (reason, 50)


def test_a_job_that_finishes_forgets_its_runs_quit() -> None:
    live = book(expired=QUIT, finished=ADMIN)
    queued = factories.job(state=JobState.QUEUED, timeout=60)
    live.run_changed(factories.RUN, factories.run(time=0), job=queued, now=0)
    assert live.sizes()[Task.EXPIRED_RUNS] == 1
    done = factories.job(state=JobState.DONE, time_end=30)
    live.job_changed(factories.JOB, done, markets=MARKETS, now=30)
    assert live.sizes()[Task.EXPIRED_RUNS] == 0  # finish closed the run
    assert live.pop_due(Task.EXPIRED_RUNS, 10**12) == []


def test_a_stopped_job_is_judged_for_claim_at_once() -> None:
    live = book(stopped=CLAIM)
    stake = factories.stake(xnos=10**12)
    stopped = factories.job(state=JobState.STOPPED)
    live.job_changed(factories.JOB, stopped, markets=MARKETS, now=77, stake=stake)
    [(action, due)] = live.pop_due(Task.STOPPED_JOBS, 77)
    assert (action.kind, action.reason, due) == (
        MaintenanceInstruction.CLAIM,
        Reason.JOB_STOPPED,
        77,
    )
    live.job_changed(factories.JOB, stopped, markets=MARKETS, now=77, stake=ABSENT)
    assert live.pop_due(Task.STOPPED_JOBS, 77) == []
    assert live.skips[Reason.STAKE_MISSING] == 1


def test_a_job_written_again_is_refiled_not_doubled() -> None:
    live = book(finished=ADMIN)
    live.job_changed(factories.JOB, factories.job(time_end=0), markets=MARKETS, now=0)
    live.job_changed(factories.JOB, factories.job(time_end=100), markets=MARKETS, now=0)
    assert live.sizes()[Task.FINISHED_JOBS] == 1
    assert live.due_at(Task.FINISHED_JOBS, factories.JOB) == 100 + 86_400 + 1
    requeued = factories.job(state=JobState.QUEUED)
    live.job_changed(factories.JOB, requeued, markets=MARKETS, now=0)
    assert live.sizes()[Task.FINISHED_JOBS] == 0


@given(count=st.integers(1, 60), capacity=st.integers(1, 30), limit=st.integers(1, 10))
def test_memory_is_bounded_and_batches_are_small(count: int, capacity: int, limit: int) -> None:
    live = book(finished=ADMIN, capacity=capacity)
    for index in range(count):
        job = factories.job(time_end=index)
        live.job_changed(factories.key(index), job, markets=MARKETS, now=0)
    held = min(count, capacity)
    assert live.sizes()[Task.FINISHED_JOBS] == held
    assert live.overflow[Task.FINISHED_JOBS] == count - held
    popped = live.pop_due(Task.FINISHED_JOBS, 10**12, limit)
    assert len(popped) == min(limit, held)
    dues = [due for _action, due in popped]
    assert dues == sorted(dues)  # the earliest due first


@given(run_time=times, timeout=st.integers(1, 10**6), read_at=times)
def test_a_full_reads_not_yet_timed_out_run_is_filed_as_a_notification_would_be(
    run_time: int, timeout: int, read_at: int
) -> None:
    job = factories.job(state=JobState.QUEUED, timeout=timeout)
    run = factories.run(time=run_time)
    plan = expired_runs.upcoming([(factories.RUN, run)], {run.job: job}, read_at, QUIT, limit=10)
    from_read = book(expired=QUIT)
    assert not from_read.read_upcoming(Task.EXPIRED_RUNS, plan)
    if read_at > run_time + timeout + 300:  # already due: the read's own plan has it
        assert plan.actions == ()
        return
    notified = book(expired=QUIT)
    notified.run_changed(factories.RUN, run, job=job, now=read_at)
    due = notified.due_at(Task.EXPIRED_RUNS, factories.RUN)
    assert from_read.due_at(Task.EXPIRED_RUNS, factories.RUN) == due
    assert from_read.pop_due(Task.EXPIRED_RUNS, due - 1) == []  # never a second early
    assert due is not None
    [(action, _)] = from_read.pop_due(Task.EXPIRED_RUNS, due)
    [(expected, _)] = notified.pop_due(Task.EXPIRED_RUNS, due)
    assert action == expected


def test_a_full_reads_upcoming_actions_beyond_the_book_say_it_overflowed() -> None:
    jobs = [factories.key(n) for n in range(3)]
    builder = PlanBuilder(Task.FINISHED_JOBS, limit=2)
    for n, job in enumerate(jobs):
        builder.act(
            finished_jobs.close_action(
                job,
                payer=factories.KEEPER,
                market=factories.MARKET,
                reason=Reason.JOB_EXPIRED,
                lamports=1,
                due_at=100 + n,
            )
        )
    plan = builder.build()  # the earliest two kept, the third waiting
    assert book(finished=ADMIN, capacity=2).read_upcoming(Task.FINISHED_JOBS, plan)
    roomy = PlanBuilder(Task.FINISHED_JOBS)
    for action in plan.actions:
        roomy.act(action)
    small = book(finished=ADMIN, capacity=1)
    assert small.read_upcoming(Task.FINISHED_JOBS, roomy.build())  # the book's own bound
    exact = book(finished=ADMIN, capacity=2)
    assert not exact.read_upcoming(Task.FINISHED_JOBS, roomy.build())
    assert [due for _, due in exact.pop_due(Task.FINISHED_JOBS, 10**6)] == [101, 102]


@given(
    ends=st.lists(st.integers(0, 10**6), min_size=1, max_size=40),
    limit=st.integers(1, 30),
    capacity=st.integers(1, 30),
    notified=st.lists(st.integers(0, 10**6), max_size=10),
)
def test_the_horizon_is_the_first_second_anything_left_out_may_fall_due(
    ends: list[int], limit: int, capacity: int, notified: list[int]
) -> None:
    """Before its horizon the book holds every action it was told of that is due by then:
    a read of only what changed cannot miss one. Whatever it left out, from a read's
    bound or its own, falls due at or after the horizon."""
    live = book(finished=ADMIN, capacity=capacity)
    builder = PlanBuilder(Task.FINISHED_JOBS, limit=limit)
    told: dict[object, int] = {}
    for n, end in enumerate(ends):
        action = finished_jobs.close_action(
            factories.key(n),
            payer=factories.KEEPER,
            market=factories.MARKET,
            reason=Reason.JOB_EXPIRED,
            lamports=1,
            due_at=end + 86_400,
        )
        builder.act(action)
        told[action.account] = action.due_at + 1
    live.read_upcoming(Task.FINISHED_JOBS, builder.build())
    for n, end in enumerate(notified, start=len(ends)):
        live.job_changed(factories.key(n), factories.job(time_end=end), markets=MARKETS, now=0)
        told[factories.key(n)] = end + 86_400 + 1
    held = {key for key in told if live.due_at(Task.FINISHED_JOBS, key) is not None}  # type: ignore[arg-type]
    left_out = [when for key, when in told.items() if key not in held]
    if not left_out:
        assert live.horizon is None
        return
    assert live.horizon is not None
    assert min(left_out) >= live.horizon
    assert not live.holds_everything_at(live.horizon)
    assert live.holds_everything_at(live.horizon - 1)
    live.read_everything()
    assert live.horizon is None


def test_a_full_book_gives_up_its_latest_due_for_an_earlier_one() -> None:
    """The book keeps the earliest due: a job that falls due sooner than everything held
    takes the place of the one due last, which sets the horizon."""
    live = book(finished=ADMIN, capacity=2)
    for index, end in enumerate((5_000, 9_000)):
        live.job_changed(factories.key(index), factories.job(time_end=end), markets=MARKETS, now=0)
    assert live.horizon is None
    live.job_changed(factories.key(2), factories.job(time_end=100), markets=MARKETS, now=0)
    assert live.due_at(Task.FINISHED_JOBS, factories.key(2)) == 100 + 86_400 + 1
    assert live.due_at(Task.FINISHED_JOBS, factories.key(1)) is None  # due last: given up
    assert live.horizon == 9_000 + 86_400 + 1
    live.job_changed(factories.key(3), factories.job(time_end=7_000), markets=MARKETS, now=0)
    assert live.due_at(Task.FINISHED_JOBS, factories.key(3)) is None  # no earlier than held
    assert live.horizon == 7_000 + 86_400 + 1
    assert live.overflow[Task.FINISHED_JOBS] == 2
