"""Plan, Action, Reason: the vocabulary every decision speaks."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from solders.pubkey import Pubkey
from task_factories import JOB, MARKET, PAYER

from keeper.program.instructions import MaintenanceInstruction
from keeper.tasks.plan import ACTION_REASONS, Action, Plan, PlanBuilder, Reason, Task, combine


def _clean() -> Action:
    return Action(MaintenanceInstruction.CLEAN, JOB, Reason.JOB_EXPIRED, PAYER, market=MARKET)


def test_reason_values_are_unique_snake_case_labels() -> None:
    values = [reason.value for reason in Reason]
    assert len(values) == len(set(values))
    assert all(re.fullmatch(r"[a-z_]+", value) for value in values)


def test_builder_refuses_a_skip_reason_as_action_and_vice_versa() -> None:
    plan = PlanBuilder(Task.FINISHED_JOBS)
    with pytest.raises(ValueError, match="not a reason to act"):
        plan.act(
            Action(MaintenanceInstruction.CLEAN, JOB, Reason.NOT_EXPIRED, PAYER, market=MARKET)
        )
    for reason in ACTION_REASONS:
        with pytest.raises(ValueError, match="reason to act"):
            plan.skip(reason)


def test_builder_counts_and_freezes() -> None:
    plan = PlanBuilder(Task.CENSUS)
    plan.skip(Reason.QUEUED, 3)
    plan.skip(Reason.QUEUED, 0)
    plan.orphan(JOB)
    built = plan.build()
    assert built.skips == Counter({Reason.QUEUED: 3, Reason.ORPHAN: 1})
    assert built.orphans == (JOB,)
    plan.skip(Reason.QUEUED)
    assert built.skips[Reason.QUEUED] == 3  # the built plan does not follow the builder


def test_merge_adds_and_refuses_other_tasks() -> None:
    one = Plan(Task.FINISHED_JOBS, (_clean(),), Counter({Reason.NOT_EXPIRED: 1}))
    two = Plan(Task.FINISHED_JOBS, (), Counter({Reason.NOT_EXPIRED: 2}))
    merged = one.merge(two)
    assert merged.actions == (_clean(),)
    assert merged.skips[Reason.NOT_EXPIRED] == 3
    with pytest.raises(ValueError, match="different tasks"):
        one.merge(Plan(Task.CENSUS))


def test_combine_equals_pairwise_merge_and_refuses_other_tasks() -> None:
    parts = [
        Plan(Task.FINISHED_JOBS, (_clean(),), Counter({Reason.NOT_EXPIRED: 1})),
        Plan(Task.FINISHED_JOBS, (), Counter({Reason.NOT_EXPIRED: 2}), (JOB,)),
        Plan(Task.FINISHED_JOBS, (_clean(),), Counter({Reason.LEGACY_LAYOUT: 1})),
    ]
    combined = combine(Task.FINISHED_JOBS, parts)
    pairwise = parts[0].merge(parts[1]).merge(parts[2])
    assert combined == pairwise
    assert combine(Task.FINISHED_JOBS, []) == Plan(Task.FINISHED_JOBS)
    with pytest.raises(ValueError, match="cannot combine"):
        combine(Task.FINISHED_JOBS, [Plan(Task.CENSUS)])


# -- the bounded plan: the earliest due kept, the rest counted ------------------------------

_candidates = st.lists(
    st.tuples(
        st.integers(min_value=-(2**40), max_value=2**40),  # due_at
        st.binary(min_size=32, max_size=32),  # the target
        st.sampled_from([Reason.JOB_EXPIRED, Reason.MARKET_GONE]),
        st.integers(min_value=0, max_value=10**9),  # lamports
    ),
    unique_by=lambda candidate: candidate[1],
    max_size=60,
)


def _close(due_at: int, key: bytes, reason: Reason, lamports: int) -> Action:
    kind = (
        MaintenanceInstruction.CLEAN
        if reason is Reason.JOB_EXPIRED
        else MaintenanceInstruction.CLEAN_ADMIN
    )
    account = Pubkey.from_bytes(key)
    return Action(kind, account, reason, PAYER, MARKET, account, lamports, due_at)


@settings(max_examples=300, deadline=None)
@given(candidates=_candidates, limit=st.integers(min_value=1, max_value=20), data=st.data())
def test_a_bounded_plan_is_sorting_everything_and_taking_the_first(
    candidates: list[tuple[int, bytes, Reason, int]], limit: int, data: st.DataObject
) -> None:
    actions = [_close(*candidate) for candidate in candidates]
    plan = PlanBuilder(Task.FINISHED_JOBS, limit=limit)
    for action in data.draw(st.permutations(actions)):
        if data.draw(st.booleans()):  # the batch path: pre-filtered, the rest only counted
            due = np.array([action.due_at], dtype=np.int64)
            if not plan.admits(due)[0]:
                plan.wait(action.reason, 1, action.lamports)
                continue
        plan.act(action)
    built = plan.build()
    ordered = sorted(actions, key=lambda a: (a.due_at, bytes(a.account)))
    assert list(built.actions) == ordered[:limit]
    rest = ordered[limit:]
    assert built.waiting == Counter(a.reason for a in rest)
    lamports: Counter[Reason] = Counter()
    for action in rest:
        lamports[action.reason] += action.lamports
    assert built.waiting_lamports == Counter({r: lamports[r] for r in built.waiting})
    assert built.due == len(actions)


@settings(max_examples=100, deadline=None)
@given(candidates=_candidates, limit=st.integers(min_value=1, max_value=20), cut=st.integers(0, 60))
def test_combining_bounded_plans_keeps_the_earliest_of_all(
    candidates: list[tuple[int, bytes, Reason, int]], limit: int, cut: int
) -> None:
    actions = [_close(*candidate) for candidate in candidates]
    parts = []
    for part in (actions[:cut], actions[cut:]):
        builder = PlanBuilder(Task.FINISHED_JOBS, limit=limit)
        for action in part:
            builder.act(action)
        parts.append(builder.build())
    combined = combine(Task.FINISHED_JOBS, parts, limit)
    ordered = sorted(actions, key=lambda a: (a.due_at, bytes(a.account)))
    assert list(combined.actions) == ordered[:limit]
    assert combined.due == len(actions)


def test_a_second_action_on_one_target_is_dropped() -> None:
    plan = PlanBuilder(Task.FINISHED_JOBS, limit=5)
    plan.act(_clean())
    plan.act(_clean())
    assert len(plan.build().actions) == 1
