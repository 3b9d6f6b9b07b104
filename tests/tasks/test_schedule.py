"""Due times solve each task's own rule for chain time, and the schedule hands them out
exactly when chain time reaches them."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from keeper.program.state import JobState
from keeper.tasks import expired_runs
from keeper.tasks.finished_jobs import is_expired
from keeper.tasks.plan import Reason
from keeper.tasks.schedule import DueSchedule, clean_due_at, quit_due_at
from tests.tasks import task_factories as factories

i64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
times = st.integers(min_value=0, max_value=2**40)


@given(time_end=i64, job_expiration=i64)
def test_clean_is_due_exactly_when_the_program_accepts_it(
    time_end: int, job_expiration: int
) -> None:
    due = clean_due_at(time_end, job_expiration)
    assert is_expired(job_expiration, time_end, due)
    assert not is_expired(job_expiration, time_end, due - 1)


@given(run_time=i64, timeout=i64, grace=st.integers(min_value=0, max_value=10**6))
def test_quit_is_due_exactly_when_the_run_times_out(
    run_time: int, timeout: int, grace: int
) -> None:
    run = factories.run(time=run_time)
    job = factories.job(state=JobState.QUEUED, timeout=timeout)
    due = quit_due_at(run_time, timeout, grace)
    assert expired_runs.verdict(run, job, due, grace) is Reason.RUN_TIMED_OUT
    assert expired_runs.verdict(run, job, due - 1, grace) is Reason.RUN_NOT_TIMED_OUT


ops = st.lists(
    st.one_of(
        st.tuples(st.just("file"), st.integers(0, 20), times),
        st.tuples(st.just("discard"), st.integers(0, 20), st.just(0)),
        st.tuples(st.just("pop"), st.just(0), times),
    ),
    max_size=200,
)


@given(ops)
def test_schedule_matches_a_plain_dict(operations: list[tuple[str, int, int]]) -> None:
    schedule: DueSchedule[int] = DueSchedule()
    model: dict[int, int] = {}
    for op, key, value in operations:
        if op == "file":
            schedule.file(key, value)
            model[key] = value
        elif op == "discard":
            schedule.discard(key)
            model.pop(key, None)
        else:
            popped = schedule.pop_due(value)
            expected = sorted((due, k) for k, due in model.items() if due <= value)
            assert [due for _, due in popped] == [due for due, _ in expected]
            assert {k for k, _ in popped} == {k for _, k in expected}
            for k, _ in popped:
                del model[k]
        assert len(schedule) == len(model)
        assert schedule.next_due() == (min(model.values()) if model else None)
        latest = schedule.latest()
        assert (latest[1] if latest else None) == (max(model.values()) if model else None)
        if latest is not None:
            assert model[latest[0]] == latest[1]


def test_pop_due_respects_the_limit_oldest_first() -> None:
    schedule: DueSchedule[str] = DueSchedule()
    for key, due in [("c", 30), ("a", 10), ("b", 20), ("d", 40)]:
        schedule.file(key, due)
    assert schedule.pop_due(35, limit=2) == [("a", 10), ("b", 20)]
    assert schedule.pop_due(35) == [("c", 30)]
    assert schedule.next_due() == 40
    assert "d" in schedule
    assert schedule.due_at("d") == 40


def test_refiling_moves_a_key_and_nothing_is_due_early() -> None:
    schedule: DueSchedule[str] = DueSchedule()
    schedule.file("job", 100)
    schedule.file("job", 500)  # an extend, or a market's new expiration
    assert schedule.pop_due(499) == []
    assert schedule.pop_due(500) == [("job", 500)]
    assert len(schedule) == 0
