"""Action -> Instruction: accounts in program order, and refusals of malformed actions."""

from __future__ import annotations

import dataclasses

import pytest
from task_factories import IDENTITY, JOB, KEEPER, MARKET, PAYER, PROGRAM, RUN, key

from keeper.program import instructions
from keeper.program.ids import SYSTEM_PROGRAM
from keeper.program.instructions import MaintenanceInstruction
from keeper.tasks.builders import instruction_for, placeholder_run
from keeper.tasks.plan import Action, Reason

CLEAN = Action(MaintenanceInstruction.CLEAN, JOB, Reason.JOB_EXPIRED, PAYER, market=MARKET, job=JOB)
CLEAN_ADMIN = Action(
    MaintenanceInstruction.CLEAN_ADMIN, JOB, Reason.MARKET_GONE, PAYER, market=MARKET, job=JOB
)
QUIT_ADMIN = Action(MaintenanceInstruction.QUIT_ADMIN, RUN, Reason.RUN_TIMED_OUT, PAYER, job=JOB)
CLAIM = Action(
    MaintenanceInstruction.CLAIM, JOB, Reason.JOB_STOPPED, KEEPER, market=MARKET, job=JOB
)


def _build(action: Action, run=None):
    return instruction_for(
        action, program_id=PROGRAM, authority=KEEPER, claim_identity=IDENTITY, run=run
    )


def _keys(ix) -> list[tuple[object, bool, bool]]:
    return [(m.pubkey, m.is_signer, m.is_writable) for m in ix.accounts]


def test_clean_uses_the_actions_market() -> None:
    ix = _build(CLEAN)
    assert ix.program_id == PROGRAM
    assert _keys(ix) == [(JOB, False, True), (MARKET, False, False), (PAYER, False, True)]
    assert instructions.maintenance_kind(ix, PROGRAM) is MaintenanceInstruction.CLEAN


def test_admin_instructions_are_signed_by_the_authority() -> None:
    assert _keys(_build(CLEAN_ADMIN)) == [
        (JOB, False, True),
        (PAYER, False, True),
        (KEEPER, True, False),
    ]
    assert _keys(_build(QUIT_ADMIN)) == [
        (RUN, False, True),
        (PAYER, False, True),
        (KEEPER, True, False),
    ]


def test_claim_with_the_real_run_key() -> None:
    new_run = key("new run")
    ix = _build(CLAIM, run=new_run)
    assert _keys(ix) == [
        (JOB, False, True),
        (new_run, True, True),
        (MARKET, False, False),
        (IDENTITY.stake, False, False),
        (IDENTITY.nft, False, False),
        (IDENTITY.metadata, False, False),
        (KEEPER, True, True),
        (IDENTITY.authority, True, False),
        (SYSTEM_PROGRAM, False, False),
    ]
    assert instructions.allowed(ix, PROGRAM)


def test_claim_needs_identity_and_run() -> None:
    with pytest.raises(ValueError, match="claim identity"):
        _build(CLAIM)
    with pytest.raises(ValueError, match="claim identity"):
        instruction_for(CLAIM, program_id=PROGRAM, authority=KEEPER, run=key("r"))


@pytest.mark.parametrize(
    "broken",
    [
        dataclasses.replace(CLEAN, reason=Reason.MARKET_GONE),  # a clean for a gone market
        dataclasses.replace(CLEAN_ADMIN, reason=Reason.JOB_EXPIRED),  # cleanAdmin a live one
        dataclasses.replace(CLAIM, reason=Reason.RUN_TIMED_OUT),
        dataclasses.replace(QUIT_ADMIN, reason=Reason.NOT_EXPIRED),
    ],
)
def test_kind_and_reason_must_agree(broken: Action) -> None:
    with pytest.raises(ValueError, match="cannot carry out"):
        _build(broken, run=key("r"))


def test_clean_without_market_is_refused() -> None:
    with pytest.raises(ValueError, match="no market"):
        _build(dataclasses.replace(CLEAN, market=None))


def test_placeholder_run_is_distinct_per_job_and_stable() -> None:
    assert placeholder_run(JOB) == placeholder_run(JOB)
    assert placeholder_run(JOB) != placeholder_run(key("another job"))
    assert placeholder_run(JOB) != JOB
