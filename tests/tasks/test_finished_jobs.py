"""Finished jobs: clean and cleanAdmin, batch and full-account paths, recheck, invariants."""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from task_factories import (
    I64,
    JOB,
    JOB_KEYS,
    JOB_VIEWS,
    MARKET,
    MARKET_VIEWS,
    PAYER,
    job,
    key,
    market,
)

from keeper.program import batch, layouts
from keeper.program.instructions import MaintenanceInstruction
from keeper.program.layouts import JOB_RENT_LAMPORTS, JobAccount, MarketAccount
from keeper.program.state import JobState
from keeper.tasks.finished_jobs import (
    FinishedJobsParams,
    decide_jobs,
    decide_market,
    expired_mask,
    is_expired,
    recheck,
)
from keeper.tasks.plan import Reason, Task
from keeper.tasks.views import ABSENT, Foreign

ADMIN = FinishedJobsParams(is_admin=True)
ANYONE = FinishedJobsParams(is_admin=False)
# job.time_end 1_000, market.job_expiration 86_400: due once now - 1_000 > 86_400.
EDGE = 1_000 + 86_400


def _records(jobs: list[JobAccount]) -> batch.StructArray:
    part = batch.DONE_JOB_SLICE
    buffer = b"".join(layouts.encode_job(j)[part.offset : part.end] for j in jobs)
    return batch.decode_jobs(buffer, part)


def _keys(count: int) -> np.ndarray:
    raw = b"".join(bytes(key(f"job {i}")) for i in range(count))
    return np.frombuffer(raw, dtype=np.uint8).reshape(count, 32)


# --- the rule ------------------------------------------------------------------------


def test_expiry_is_strict() -> None:
    assert not is_expired(86_400, 1_000, EDGE)
    assert is_expired(86_400, 1_000, EDGE + 1)


@given(st.lists(I64, max_size=20), I64, I64 | st.integers(-(2**70), 2**70))
def test_expired_mask_matches_python_ints_without_overflow(ends, expiration, now) -> None:
    column = np.array(ends, dtype=np.int64)
    mask = expired_mask(column, expiration, now)
    assert mask.tolist() == [is_expired(expiration, end, now) for end in ends]


# --- batch path (one live or gone market) ---------------------------------------------


def test_batch_only_due_jobs_become_cleans_with_the_markets_key() -> None:
    jobs = [job(time_end=1_000), job(time_end=1_001, payer=key("p2")), job(time_end=0)]
    plan = decide_market(
        _records(jobs), _keys(3), market_key=MARKET, market=market(), now=EDGE + 1, params=ANYONE
    )
    assert plan.task is Task.FINISHED_JOBS
    # Due first: job 2 ended earlier, so it expired earlier.
    assert [a.account for a in plan.actions] == [key("job 2"), key("job 0")]
    assert [a.due_at for a in plan.actions] == [86_400, 1_000 + 86_400]
    assert all(a.kind is MaintenanceInstruction.CLEAN for a in plan.actions)
    assert all(a.market == MARKET and a.reason is Reason.JOB_EXPIRED for a in plan.actions)
    assert plan.actions[0].payer == PAYER
    assert plan.actions[0].lamports == JOB_RENT_LAMPORTS
    assert plan.skips == {Reason.NOT_EXPIRED: 1}


def test_batch_keys_as_bytes_and_lamports() -> None:
    keys = [bytes(key("a")), bytes(key("b"))]
    plan = decide_market(
        _records([job(), job()]),
        keys,
        market_key=MARKET,
        market=market(),
        now=EDGE + 1,
        params=ANYONE,
        lamports=np.array([5, 7], dtype=np.uint64),
    )
    assert [(a.account, a.lamports) for a in plan.actions] == [(key("a"), 5), (key("b"), 7)]


def test_batch_market_gone_admin_cleans_every_done_job() -> None:
    plan = decide_market(
        _records([job(time_end=10**12)]),
        _keys(1),
        market_key=MARKET,
        market=ABSENT,
        now=0,
        params=ADMIN,
    )
    (action,) = plan.actions
    assert action.kind is MaintenanceInstruction.CLEAN_ADMIN
    assert action.reason is Reason.MARKET_GONE
    assert action.market == MARKET


def test_batch_market_gone_not_admin_or_foreign_market() -> None:
    records, keys = _records([job(), job()]), _keys(2)
    plan = decide_market(records, keys, market_key=MARKET, market=ABSENT, now=0, params=ANYONE)
    assert plan.actions == ()
    assert plan.skips == {Reason.NOT_ADMIN: 2}
    plan = decide_market(records, keys, market_key=MARKET, market=Foreign(), now=0, params=ADMIN)
    assert plan.actions == ()
    assert plan.skips == {Reason.MARKET_INVALID: 2}


def test_batch_rows_that_are_not_done_are_counted_never_acted_on() -> None:
    jobs = [job(state=JobState.QUEUED), job(state=JobState.STOPPED), job(state=1), job()]
    for view in (market(), ABSENT):
        plan = decide_market(
            _records(jobs), _keys(4), market_key=MARKET, market=view, now=EDGE + 1, params=ADMIN
        )
        assert [a.account for a in plan.actions] == [key("job 3")]
        assert plan.skips == {Reason.STATE_CHANGED: 2, Reason.UNKNOWN_STATE: 1}


def test_batch_with_the_market_field_refuses_other_markets() -> None:
    jobs = [job(market=MARKET), job(market=key("other")), job(market=key("other"), state=0)]
    records = batch.decode_jobs(b"".join(layouts.encode_job(j) for j in jobs))
    plan = decide_market(
        records, _keys(3), market_key=MARKET, market=market(), now=EDGE + 1, params=ADMIN
    )
    assert [a.account for a in plan.actions] == [key("job 0")]
    assert plan.skips == {Reason.MARKET_MISMATCH: 1, Reason.STATE_CHANGED: 1}


def test_batch_expiration_equality_is_not_due() -> None:
    plan = decide_market(
        _records([job()]), _keys(1), market_key=MARKET, market=market(), now=EDGE, params=ADMIN
    )
    assert plan.actions == ()
    assert plan.skips == {Reason.NOT_EXPIRED: 1}


def test_batch_input_checks() -> None:
    with pytest.raises(ValueError, match="keys"):
        decide_market(
            _records([job()]), _keys(2), market_key=MARKET, market=market(), now=0, params=ADMIN
        )
    narrow = batch.decode_jobs(b"", batch.DataSlice(0, 8))
    with pytest.raises(ValueError, match="DONE_JOB_SLICE"):
        decide_market(narrow, [], market_key=MARKET, market=market(), now=0, params=ADMIN)


def test_batch_of_many_with_few_due_keeps_only_the_due() -> None:
    count = 50_000
    ends = np.full(count, 10**12, dtype=np.int64)
    ends[::10_000] = 0
    part = batch.DONE_JOB_SLICE
    template = np.frombuffer(layouts.encode_job(job())[part.offset : part.end], dtype=np.uint8)
    raw = np.tile(template, count)
    records = batch.decode_records(raw.tobytes(), batch.job_dtype(part)).copy()
    records["time_end"] = ends
    keys = np.zeros((count, 32), dtype=np.uint8)
    keys[:, :8] = np.arange(count, dtype=np.uint64).view(np.uint8).reshape(count, 8)
    plan = decide_market(records, keys, market_key=MARKET, market=market(), now=EDGE, params=ADMIN)
    assert len(plan.actions) == 5
    assert plan.skips == {Reason.NOT_EXPIRED: count - 5}


# --- full-account path ------------------------------------------------------------------


def _decide(view: object, market_view: object, now: int = EDGE + 1, params=ADMIN):
    return decide_jobs([(JOB, view)], markets={MARKET: market_view}, now=now, params=params)  # type: ignore[list-item,dict-item]


@pytest.mark.parametrize(
    ("view", "market_view", "params", "expected"),
    [
        (job(), market(), ANYONE, Reason.JOB_EXPIRED),  # anyone may clean
        (job(time_end=2_000), market(), ADMIN, Reason.NOT_EXPIRED),
        (job(), ABSENT, ADMIN, Reason.MARKET_GONE),
        (job(), ABSENT, ANYONE, Reason.NOT_ADMIN),
        (job(), Foreign(), ADMIN, Reason.MARKET_INVALID),
        (job(timeout=None), ABSENT, ADMIN, Reason.LEGACY_LAYOUT),
        (job(timeout=None), market(), ADMIN, Reason.LEGACY_LAYOUT),
        (job(state=JobState.QUEUED), ABSENT, ADMIN, Reason.QUEUED),  # never cleanAdmin
        (job(state=JobState.STOPPED), ABSENT, ADMIN, Reason.STATE_CHANGED),  # never cleanAdmin
        (job(state=1), ABSENT, ADMIN, Reason.UNKNOWN_STATE),
        (Foreign(), market(), ADMIN, Reason.UNDECODABLE),
        (ABSENT, market(), ADMIN, Reason.ALREADY_CLOSED),
    ],
)
def test_decision_table(view, market_view, params, expected) -> None:
    plan = _decide(view, market_view, params=params)
    reasons = [a.reason for a in plan.actions] + list(plan.skips)
    assert reasons == [expected]


def test_full_path_actions_use_the_jobs_own_market_and_payer() -> None:
    (clean,) = _decide(job(payer=key("p")), market()).actions
    assert (clean.kind, clean.market, clean.payer) == (
        MaintenanceInstruction.CLEAN,
        MARKET,
        key("p"),
    )
    (admin,) = _decide(job(), ABSENT).actions
    assert (admin.kind, admin.market) == (MaintenanceInstruction.CLEAN_ADMIN, MARKET)


def test_full_path_unfetched_market_is_an_error_not_gone() -> None:
    with pytest.raises(KeyError, match="market"):
        decide_jobs([(JOB, job())], markets={}, now=EDGE + 1, params=ADMIN)


# --- recheck ---------------------------------------------------------------------------


def _clean():
    return _decide(job(), market()).actions[0]


def _clean_admin():
    return _decide(job(), ABSENT).actions[0]


@pytest.mark.parametrize(
    ("view", "market_view", "expected"),
    [
        (job(), market(), None),
        (ABSENT, market(), Reason.ALREADY_CLOSED),  # another keeper cleaned it
        (job(timeout=None), market(), Reason.LEGACY_LAYOUT),
        (job(state=JobState.STOPPED), market(), Reason.STATE_CHANGED),  # quit by a second run
        (job(market=key("other market")), market(), Reason.MARKET_MISMATCH),
        (job(payer=key("other payer")), market(), Reason.STATE_CHANGED),
        (job(), market(job_expiration=10**9), Reason.NOT_EXPIRED),  # retention was raised
        (job(), ABSENT, Reason.STATE_CHANGED),  # market closed meanwhile: now a cleanAdmin
        (job(), Foreign(), Reason.MARKET_INVALID),
    ],
)
def test_recheck_clean(view, market_view, expected) -> None:
    assert recheck(_clean(), view, market_view, EDGE + 1, ANYONE) is expected


@pytest.mark.parametrize(
    ("view", "market_view", "params", "expected"),
    [
        (job(), ABSENT, ADMIN, None),
        (job(), market(), ADMIN, Reason.STATE_CHANGED),  # the market is back: clean instead
        (job(), ABSENT, ANYONE, Reason.NOT_ADMIN),
        (job(state=JobState.QUEUED), ABSENT, ADMIN, Reason.QUEUED),
        (job(state=JobState.STOPPED), ABSENT, ADMIN, Reason.STATE_CHANGED),
        (job(market=key("other market")), ABSENT, ADMIN, Reason.MARKET_MISMATCH),
    ],
)
def test_recheck_clean_admin(view, market_view, params, expected) -> None:
    assert recheck(_clean_admin(), view, market_view, EDGE + 1, params) is expected


def test_recheck_refuses_malformed_actions() -> None:
    for broken in (
        dataclasses.replace(_clean(), market=None),
        dataclasses.replace(_clean(), kind=MaintenanceInstruction.CLEAN_ADMIN),
        dataclasses.replace(_clean(), kind=MaintenanceInstruction.QUIT_ADMIN),
    ):
        with pytest.raises(ValueError, match="cannot recheck"):
            recheck(broken, job(), market(), EDGE + 1, ADMIN)


# --- invariants --------------------------------------------------------------------------


@given(
    st.dictionaries(JOB_KEYS, JOB_VIEWS, max_size=8),
    st.dictionaries(st.integers(0, 2).map(lambda i: key(f"market {i}")), MARKET_VIEWS),
    I64,
    st.booleans(),
)
def test_no_plan_closes_what_the_table_forbids(jobs, fetched, now, is_admin) -> None:
    markets = {key(f"market {i}"): ABSENT for i in range(3)} | fetched
    params = FinishedJobsParams(is_admin=is_admin)
    plan = decide_jobs(list(jobs.items()), markets=markets, now=now, params=params)
    assert len(plan.actions) + sum(plan.skips.values()) == len(jobs)
    for action in plan.actions:
        the_job = jobs[action.account]
        assert isinstance(the_job, JobAccount)
        assert the_job.state == JobState.DONE
        assert not the_job.is_legacy
        assert action.market == the_job.market
        assert action.payer == the_job.payer
        the_market = markets[the_job.market]
        if action.kind is MaintenanceInstruction.CLEAN_ADMIN:
            assert is_admin
            assert the_market is ABSENT
        else:
            assert isinstance(the_market, MarketAccount)
            assert the_market.job_expiration < now - the_job.time_end
        assert recheck(action, the_job, the_market, now, params) is None


@given(
    st.lists(
        st.builds(
            job, payer=st.integers(0, 3).map(key), state=st.sampled_from([0, 2, 3, 9]), time_end=I64
        ),
        max_size=12,
    ),
    MARKET_VIEWS,
    I64,
    st.booleans(),
)
def test_batch_and_full_paths_agree(jobs, market_view, now, is_admin) -> None:
    params = FinishedJobsParams(is_admin=is_admin)
    keys = [bytes(key(f"job {i}")) for i in range(len(jobs))]
    fast = decide_market(
        _records(jobs), keys, market_key=MARKET, market=market_view, now=now, params=params
    )
    full = decide_jobs(
        [(key(f"job {i}"), j) for i, j in enumerate(jobs)],
        markets={MARKET: market_view},
        now=now,
        params=params,
    )
    assert fast.actions == full.actions
    # The batch cannot tell a Queued row from a Stopped one: it was asked for Done only.
    expected: Counter[Reason] = Counter()
    for reason, count in full.skips.items():
        expected[Reason.STATE_CHANGED if reason is Reason.QUEUED else reason] += count
    assert fast.skips == expected
