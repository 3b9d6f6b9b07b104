"""Plan, Action, Reason: the vocabulary every decision speaks."""

from __future__ import annotations

import re
from collections import Counter

import pytest
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
