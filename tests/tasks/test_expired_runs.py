"""Expired runs: the quitAdmin rows of the decision table, its boundaries and invariants."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st
from task_factories import JOB, JOB_VIEWS, PAYER, RUN, RUNS, TIMES, job, key, run

from keeper.program.instructions import MaintenanceInstruction
from keeper.program.layouts import RUN_RENT_LAMPORTS, JobAccount
from keeper.program.state import JobState
from keeper.tasks.expired_runs import ExpiredRunsParams, decide, recheck
from keeper.tasks.plan import ACTION_REASONS, Reason, Task
from keeper.tasks.views import ABSENT, Foreign

ADMIN = ExpiredRunsParams(is_admin=True, grace_seconds=60)
RUNNING = job(state=JobState.QUEUED, timeout=3_600)
DEADLINE = run().time + 3_600 + 60  # run.time + job.timeout + grace


def _reason(job_view: object, now: int, params: ExpiredRunsParams = ADMIN) -> Reason:
    plan = decide([(RUN, run())], {JOB: job_view}, now, params)  # type: ignore[dict-item]
    assert plan.task is Task.EXPIRED_RUNS
    if plan.actions:
        (action,) = plan.actions
        assert not plan.skips
        return action.reason
    ((reason, count),) = plan.skips.items()
    assert count == 1
    return reason


@pytest.mark.parametrize(
    ("job_view", "now", "expected"),
    [
        (RUNNING, DEADLINE + 1, Reason.RUN_TIMED_OUT),
        (RUNNING, DEADLINE, Reason.RUN_NOT_TIMED_OUT),  # strict: equality is not past
        (RUNNING, DEADLINE - 60, Reason.RUN_NOT_TIMED_OUT),  # past the timeout, within grace
        (job(state=JobState.STOPPED), DEADLINE + 1, Reason.RUN_TIMED_OUT),  # a claimed job
        (ABSENT, 0, Reason.RUN_JOB_MISSING),  # whatever the time
        (job(state=JobState.DONE), run().time, Reason.RUN_JOB_DONE),  # no grace
        (job(state=JobState.DONE, timeout=None), 0, Reason.RUN_JOB_DONE),  # legacy, Done
        (job(state=JobState.QUEUED, timeout=None), 2**62, Reason.LEGACY_LAYOUT),
        (job(state=1), DEADLINE + 1, Reason.UNKNOWN_STATE),
        (Foreign("a token account"), 2**62, Reason.UNDECODABLE),
    ],
)
def test_decision_table(job_view: object, now: int, expected: Reason) -> None:
    assert _reason(job_view, now) is expected


def test_zero_grace_boundary() -> None:
    params = ExpiredRunsParams(is_admin=True, grace_seconds=0)
    assert _reason(RUNNING, DEADLINE - 60, params) is Reason.RUN_NOT_TIMED_OUT
    assert _reason(RUNNING, DEADLINE - 59, params) is Reason.RUN_TIMED_OUT


def test_chain_time_days_from_wall_time_is_all_that_counts() -> None:
    # A test validator's clock can run days ahead: only `now` decides.
    days = 86_400 * 30
    assert _reason(RUNNING, DEADLINE + days) is Reason.RUN_TIMED_OUT
    assert _reason(RUNNING, DEADLINE - days) is Reason.RUN_NOT_TIMED_OUT


@pytest.mark.parametrize("job_view", [RUNNING, ABSENT, job(state=JobState.DONE)])
def test_not_admin_skips_what_would_be_quit(job_view: object) -> None:
    params = ExpiredRunsParams(is_admin=False, grace_seconds=60)
    assert _reason(job_view, DEADLINE + 1, params) is Reason.NOT_ADMIN


def test_not_admin_still_reports_runs_that_are_fine() -> None:
    params = ExpiredRunsParams(is_admin=False)
    assert _reason(RUNNING, 0, params) is Reason.RUN_NOT_TIMED_OUT


def test_action_fields() -> None:
    the_run = run(payer=key("run payer"))
    plan = decide([(RUN, the_run)], {JOB: ABSENT}, 0, ADMIN)
    (action,) = plan.actions
    assert action.kind is MaintenanceInstruction.QUIT_ADMIN
    assert action.account == RUN
    assert action.payer == key("run payer")
    assert action.job == JOB
    assert action.market is None
    assert action.lamports == RUN_RENT_LAMPORTS
    plan = decide([(RUN, the_run)], {JOB: ABSENT}, 0, ADMIN, lamports={RUN: 2_000_000})
    assert plan.actions[0].lamports == 2_000_000


def test_unfetched_job_is_an_error_not_missing() -> None:
    with pytest.raises(KeyError, match="job"):
        decide([(RUN, run())], {}, 0, ADMIN)


def test_negative_grace_is_refused() -> None:
    with pytest.raises(ValueError, match="grace"):
        ExpiredRunsParams(is_admin=True, grace_seconds=-1)


def _planned():
    (action,) = decide([(RUN, run())], {JOB: RUNNING}, DEADLINE + 1, ADMIN).actions
    return action


def test_recheck_still_due() -> None:
    assert recheck(_planned(), run(), RUNNING, DEADLINE + 1, ADMIN) is None


def test_recheck_after_extend_raised_the_timeout() -> None:
    extended = dataclasses.replace(RUNNING, timeout=7_200)
    assert recheck(_planned(), run(), extended, DEADLINE + 1, ADMIN) is Reason.RUN_NOT_TIMED_OUT


def test_recheck_run_gone_or_changed() -> None:
    action = _planned()
    assert recheck(action, None, RUNNING, DEADLINE + 1, ADMIN) is Reason.ALREADY_CLOSED
    assert recheck(action, ABSENT, RUNNING, DEADLINE + 1, ADMIN) is Reason.ALREADY_CLOSED
    assert recheck(action, Foreign(), RUNNING, DEADLINE + 1, ADMIN) is Reason.UNDECODABLE
    moved = run(payer=key("someone else"))
    assert recheck(action, moved, RUNNING, DEADLINE + 1, ADMIN) is Reason.STATE_CHANGED


def test_recheck_job_finished_meanwhile_still_quits() -> None:
    done = dataclasses.replace(RUNNING, state=JobState.DONE)
    assert recheck(_planned(), run(), done, DEADLINE + 1, ADMIN) is None


def test_recheck_not_admin_and_wrong_kind() -> None:
    action = _planned()
    assert (
        recheck(action, run(), RUNNING, DEADLINE + 1, ExpiredRunsParams(is_admin=False))
        is Reason.NOT_ADMIN
    )
    with pytest.raises(ValueError, match="cannot recheck"):
        recheck(
            dataclasses.replace(action, kind=MaintenanceInstruction.CLEAN), run(), RUNNING, 0, ADMIN
        )


@given(
    st.dictionaries(st.integers(0, 99).map(lambda i: key(f"run {i}")), RUNS, max_size=8).map(
        lambda runs: list(runs.items())
    ),
    st.dictionaries(st.integers(0, 9).map(lambda i: key(f"job {i}")), JOB_VIEWS),
    TIMES,
    st.booleans(),
    st.integers(0, 10_000),
)
def test_no_plan_quits_a_run_the_table_forbids(runs, fetched, now, is_admin, grace) -> None:
    jobs = {key(f"job {i}"): ABSENT for i in range(10)} | fetched
    params = ExpiredRunsParams(is_admin=is_admin, grace_seconds=grace)
    plan = decide(runs, jobs, now, params)
    assert len(plan.actions) + sum(plan.skips.values()) == len(runs)
    if not is_admin:
        assert plan.actions == ()
    by_key = dict(runs)
    for action in plan.actions:
        assert action.reason in ACTION_REASONS
        the_run = by_key[action.account]
        assert action.payer == the_run.payer
        assert action.job == the_run.job
        the_job = jobs[the_run.job]
        if action.reason is Reason.RUN_JOB_MISSING:
            assert the_job is ABSENT
        elif action.reason is Reason.RUN_JOB_DONE:
            assert isinstance(the_job, JobAccount)
            assert the_job.state == JobState.DONE
        else:
            assert isinstance(the_job, JobAccount)
            assert the_job.timeout is not None
            assert now > the_run.time + the_job.timeout + grace


def test_payer_is_the_runs_not_the_jobs() -> None:
    plan = decide([(RUN, run(payer=PAYER))], {JOB: job(payer=key("other"), state=2)}, 0, ADMIN)
    assert plan.actions[0].payer == PAYER
