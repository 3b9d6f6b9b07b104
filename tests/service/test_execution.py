"""Dry-run output: one JSON object per action, the same reason word as logs and metrics."""

from __future__ import annotations

import json

from solders.pubkey import Pubkey

from keeper.program.instructions import MaintenanceInstruction
from keeper.service.execution import dry_run_lines
from keeper.tasks.plan import Action, Plan, Reason, Task


def test_dry_run_line_names_the_run_for_quit_admin_and_the_job_otherwise() -> None:
    run, job, payer, market = (Pubkey.new_unique() for _ in range(4))
    plan = Plan(
        Task.EXPIRED_RUNS,
        actions=(
            Action(MaintenanceInstruction.QUIT_ADMIN, run, Reason.RUN_JOB_DONE, payer, job=job),
        ),
    )
    (line,) = dry_run_lines(plan)
    entry = json.loads(line)
    assert entry["action"] == "quitAdmin"
    assert entry["account"] == str(run)
    assert entry["job"] == str(job)
    assert entry["reason"] == "run_job_done"
    clean = Plan(
        Task.FINISHED_JOBS,
        actions=(
            Action(
                MaintenanceInstruction.CLEAN, job, Reason.JOB_EXPIRED, payer, market=market, job=job
            ),
        ),
    )
    entry = json.loads(dry_run_lines(clean)[0])
    assert entry["account"] == str(job)
    assert entry["market"] == str(market)
    assert "job" not in entry  # the account is the job


def test_reason_values_are_metric_safe_words() -> None:
    for reason in Reason:
        assert reason.value.replace("_", "").isalpha()
        assert reason.value == reason.value.lower()
