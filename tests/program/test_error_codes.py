"""Names for Anchor error codes: the logged name first, otherwise every candidate.

Three enums start at 6000 (the jobs program's, the shared Nosana enum, the staking
program's), so a code alone is ambiguous.
"""

from __future__ import annotations

import pytest
from anchorpy.error import _LangErrorCode as AnchorpyLangErrorCode

from keeper.program import error_codes
from keeper.program.error_codes import error_code, error_names

CLEAN_NOT_EXPIRED_LOGS = [
    "Program nosJhNRqr2bc9g1nfGDcXXTXvYUmxD4cVwy2pMWhrYM invoke [1]",
    "Program log: Instruction: Clean",
    (
        "Program log: AnchorError thrown in programs/nosana-jobs/src/instructions/clean.rs:31. "
        "Error Code: JobNotExpired. Error Number: 6005. Error Message: The job has not yet "
        "expired."
    ),
    "Program nosJhNRqr2bc9g1nfGDcXXTXvYUmxD4cVwy2pMWhrYM consumed 5123 of 200000 compute units",
]
CLOSED_ACCOUNT_LOGS = [
    (
        "Program log: AnchorError caused by account: job. Error Code: AccountNotInitialized. "
        "Error Number: 3012. Error Message: The program expected this account to be already "
        "initialized."
    ),
]


def test_the_logged_name_wins() -> None:
    assert error_names(6005, CLEAN_NOT_EXPIRED_LOGS) == ("JobNotExpired",)
    assert error_names(3012, CLOSED_ACCOUNT_LOGS) == ("AccountNotInitialized",)


def test_logs_without_an_error_line_fall_back_to_candidates() -> None:
    logs = ["Program log: Instruction: Clean", "Program consumed 100 compute units"]
    assert error_names(6005, logs) == ("JobNotExpired", "InvalidTokenAccount", "NotUnstaked")


def test_6000_is_ambiguous_and_names_all_three() -> None:
    assert error_names(6000) == ("InvalidMarketAccount", "Unauthorized", "AmountNotEnough")


def test_6004_is_job_in_wrong_state_or_the_others() -> None:
    assert error_names(6004) == ("JobInWrongState", "InvalidAccount", "AlreadyUnstaked")


def test_6012_includes_the_staking_invalid_stake_account_raised_by_claim() -> None:
    names = error_names(6012)
    assert "InvalidStakeAccount" in names
    assert names[0] == "NodeStakeUnauthorized"  # the jobs program's own 6012


def test_codes_only_the_jobs_enum_reaches() -> None:
    assert error_names(6013) == ("NodeNotEnoughStake",)
    assert error_names(6016) == ("NodeNftWrongOwner",)
    assert error_names(6017) == ("NodeNftInvalidAmount",)
    assert error_names(6018) == ("NodeKeyInvalidCollection",)


def test_nosana_enum_positions_from_the_facts_page() -> None:
    assert "Unauthorized" in error_names(6000)
    assert "InvalidPayer" in error_names(6008)


@pytest.mark.parametrize(
    ("code", "name"),
    [
        (3012, "AccountNotInitialized"),
        (3003, "AccountDidNotDeserialize"),
        (3002, "AccountDiscriminatorMismatch"),
        (3007, "AccountOwnedByWrongProgram"),
        (3010, "AccountNotSigner"),
        (2001, "ConstraintHasOne"),
    ],
)
def test_anchor_codes(code: int, name: str) -> None:
    assert error_names(code) == (name,)


def test_named_constants() -> None:
    assert error_codes.ACCOUNT_NOT_INITIALIZED == 3012
    assert error_codes.ACCOUNT_DID_NOT_DESERIALIZE == 3003


def test_unknown_codes_have_no_name() -> None:
    assert error_names(6019 + 100) == ()
    assert error_names(2) == ()


def test_the_system_programs_errors_from_a_claims_init_are_named() -> None:
    """A claim creates its run through the System program: its errors come back as Custom."""
    assert error_names(0) == ("AccountAlreadyInUse",)
    assert error_names(1) == ("ResultWithNegativeLamports",)


def test_anchor_names_agree_with_anchorpy() -> None:
    anchorpy_names = {member.value: member.name for member in AnchorpyLangErrorCode}
    for code, name in error_codes.ANCHOR_ERRORS.items():
        assert anchorpy_names[code] == name, code


def all_names() -> list[str]:
    return [
        *error_codes.JOBS_ERRORS,
        *error_codes.NOSANA_ERRORS,
        *error_codes.STAKING_ERRORS,
        *error_codes.ANCHOR_ERRORS.values(),
    ]


def test_no_name_is_in_two_enums() -> None:
    # error_code(name) takes the first enum that has the name: this keeps that unambiguous.
    names = all_names()
    assert len(names) == len(set(names))


@pytest.mark.parametrize("name", all_names())
def test_error_code_round_trips(name: str) -> None:
    assert name in error_names(error_code(name))


def test_error_code_of_the_names_the_keeper_checks() -> None:
    assert error_code("JobInWrongState") == 6004
    assert error_code("JobNotExpired") == 6005
    assert error_code("InvalidStakeAccount") == 6012
    assert error_code("InvalidPayer") == 6008
    assert error_code("AccountNotInitialized") == 3012


def test_error_code_of_an_unknown_name_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        error_code("NoSuchError")
