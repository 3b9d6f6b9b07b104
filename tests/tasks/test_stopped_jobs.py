"""Stopped jobs: the claim rows of the decision table, recheck, and invariants."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st
from task_factories import (
    IDENTITY,
    JOB,
    JOB_KEYS,
    JOB_VIEWS,
    KEEPER,
    MARKET,
    MARKET_VIEWS,
    STAKE_VIEWS,
    job,
    key,
    market,
    stake,
)

from keeper.program.instructions import MaintenanceInstruction
from keeper.program.layouts import RUN_RENT_LAMPORTS, JobAccount, MarketAccount, StakeAccount
from keeper.program.state import JobState
from keeper.tasks.plan import Reason, Task
from keeper.tasks.stopped_jobs import ClaimState, StoppedJobsParams, decide, recheck
from keeper.tasks.views import ABSENT, Foreign

ENABLED = StoppedJobsParams(claim_enabled=True, identity=IDENTITY, payer=KEEPER)
STOPPED = job(state=JobState.STOPPED)


def _reason(
    job_view: object = STOPPED,
    *,
    has_run: bool = False,
    market_view: object = None,
    stake_view: object = None,
    params: StoppedJobsParams = ENABLED,
) -> Reason:
    plan = decide(
        [(JOB, job_view)],  # type: ignore[list-item]
        jobs_with_runs={JOB} if has_run else set(),
        markets={MARKET: market() if market_view is None else market_view},  # type: ignore[dict-item]
        stake=stake() if stake_view is None else stake_view,  # type: ignore[arg-type]
        params=params,
    )
    assert plan.task is Task.STOPPED_JOBS
    if plan.actions:
        return plan.actions[0].reason
    ((reason, _count),) = plan.skips.items()
    return reason


def test_claims_a_stopped_job_with_no_run() -> None:
    assert _reason() is Reason.JOB_STOPPED


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"has_run": True}, Reason.JOB_RUNNING),
        ({"params": dataclasses.replace(ENABLED, claim_enabled=False)}, Reason.CLAIM_DISABLED),
        ({"params": dataclasses.replace(ENABLED, identity=None)}, Reason.CLAIM_DISABLED),
        ({"job_view": job(state=JobState.STOPPED, timeout=None)}, Reason.LEGACY_LAYOUT),
        ({"job_view": job(state=JobState.QUEUED)}, Reason.QUEUED),
        ({"job_view": job(state=JobState.DONE)}, Reason.STATE_CHANGED),
        ({"job_view": job(state=4)}, Reason.UNKNOWN_STATE),
        ({"job_view": Foreign()}, Reason.UNDECODABLE),
        ({"job_view": ABSENT}, Reason.ALREADY_CLOSED),
        ({"market_view": ABSENT}, Reason.MARKET_MISSING),
        ({"market_view": Foreign()}, Reason.MARKET_INVALID),
        ({"stake_view": ABSENT}, Reason.STAKE_MISSING),
        ({"stake_view": Foreign()}, Reason.STAKE_MISSING),
        ({"stake_view": stake(authority=key("someone"))}, Reason.STAKE_MISSING),
        ({"stake_view": stake(xnos=99)}, Reason.STAKE_TOO_LOW),
        ({"stake_view": stake(xnos=0)}, Reason.STAKE_TOO_LOW),  # unstaking sets xnos to 0
    ],
)
def test_decision_table(row: dict[str, object], expected: Reason) -> None:
    assert _reason(**row) is expected  # type: ignore[arg-type]


def test_stake_equal_to_the_minimum_is_enough() -> None:
    assert _reason(stake_view=stake(xnos=100), market_view=market(node_xnos_minimum=100)) is (
        Reason.JOB_STOPPED
    )


def test_a_job_with_a_run_is_never_claimed_even_when_disabled() -> None:
    disabled = dataclasses.replace(ENABLED, claim_enabled=False)
    assert _reason(has_run=True, params=disabled) is Reason.JOB_RUNNING


def test_action_fields() -> None:
    plan = decide(
        [(JOB, STOPPED)],
        jobs_with_runs=set(),
        markets={MARKET: market()},
        stake=stake(),
        params=ENABLED,
    )
    (action,) = plan.actions
    assert action.kind is MaintenanceInstruction.CLAIM
    assert action.account == JOB
    assert action.job == JOB
    assert action.market == STOPPED.market
    assert action.payer == KEEPER
    assert action.lamports == -RUN_RENT_LAMPORTS


def test_disabled_claiming_needs_no_market_or_stake() -> None:
    disabled = dataclasses.replace(ENABLED, claim_enabled=False)
    plan = decide([(JOB, STOPPED)], jobs_with_runs=set(), markets={}, params=disabled)
    assert plan.skips == {Reason.CLAIM_DISABLED: 1}


def _fresh(**changes: object) -> ClaimState:
    base = ClaimState(job=STOPPED, has_run=False, market=market(), stake=stake())
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def _planned():
    plan = decide(
        [(JOB, STOPPED)],
        jobs_with_runs=set(),
        markets={MARKET: market()},
        stake=stake(),
        params=ENABLED,
    )
    return plan.actions[0]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, None),
        ({"has_run": True}, Reason.JOB_RUNNING),  # another keeper claimed it meanwhile
        ({"job": ABSENT}, Reason.ALREADY_CLOSED),  # recovered by the project
        ({"job": job(state=JobState.DONE)}, Reason.STATE_CHANGED),
        ({"job": job(state=JobState.STOPPED, market=key("other"))}, Reason.MARKET_MISMATCH),
        ({"market": ABSENT}, Reason.MARKET_MISSING),
        ({"market": market(node_xnos_minimum=10**9)}, Reason.STAKE_TOO_LOW),
        ({"stake": ABSENT}, Reason.STAKE_MISSING),
    ],
)
def test_recheck(changes: dict[str, object], expected: Reason | None) -> None:
    assert recheck(_planned(), _fresh(**changes), ENABLED) is expected


def test_recheck_refuses_other_kinds_and_disabled() -> None:
    action = _planned()
    disabled = dataclasses.replace(ENABLED, claim_enabled=False)
    assert recheck(action, _fresh(), disabled) is Reason.CLAIM_DISABLED
    with pytest.raises(ValueError, match="cannot recheck"):
        recheck(dataclasses.replace(action, kind=MaintenanceInstruction.CLEAN), _fresh(), ENABLED)


@given(
    st.dictionaries(JOB_KEYS, JOB_VIEWS, max_size=8),
    st.sets(JOB_KEYS),
    st.dictionaries(st.integers(0, 2).map(lambda i: key(f"market {i}")), MARKET_VIEWS),
    STAKE_VIEWS,
    st.builds(
        StoppedJobsParams,
        claim_enabled=st.booleans(),
        identity=st.sampled_from([IDENTITY, None]),
        payer=st.just(KEEPER),
    ),
)
def test_no_plan_claims_what_the_table_forbids(jobs, runs, fetched, stake_view, params) -> None:
    markets = {key(f"market {i}"): ABSENT for i in range(3)} | fetched
    plan = decide(
        list(jobs.items()), jobs_with_runs=runs, markets=markets, stake=stake_view, params=params
    )
    assert len(plan.actions) + sum(plan.skips.values()) == len(jobs)
    if not params.claim_enabled or params.identity is None:
        assert plan.actions == ()
    for action in plan.actions:
        the_job = jobs[action.account]
        assert action.account not in runs
        assert isinstance(the_job, JobAccount)
        assert not the_job.is_legacy
        assert the_job.state == JobState.STOPPED
        assert action.market == the_job.market
        the_market = markets[the_job.market]
        assert isinstance(the_market, MarketAccount)
        assert isinstance(stake_view, StakeAccount)
        assert stake_view.authority == IDENTITY.authority
        assert stake_view.xnos >= the_market.node_xnos_minimum
