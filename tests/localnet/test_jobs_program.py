"""The jobs program model: dispatch, clean, cleanAdmin and quitAdmin, one test per check.

Each rejection asserts the exact error the real program returns (code, name and Anchor's
log line where it matters). ``claim`` has its own file.
"""

from __future__ import annotations

import hashlib

import pytest
from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey

from keeper.localnet.builder import DEFAULT_CHAIN_TIME, World, WorldBuilder, minimum_balance
from keeper.localnet.jobs_program import (
    CLEAN_ADMIN_UNITS,
    CLEAN_UNITS,
    QUIT_ADMIN_UNITS,
    JobsProgram,
)
from keeper.localnet.model import Account
from keeper.localnet.sandbox import Outcome, Sandbox
from keeper.program import instructions as ix
from keeper.program.ids import SYSTEM_PROGRAM
from keeper.program.layouts import (
    JOB_DISCRIMINATOR,
    JOB_RENT_LAMPORTS,
    RUN_RENT_LAMPORTS,
    JobAccount,
    encode_job,
)
from keeper.program.state import JobState

NOW = DEFAULT_CHAIN_TIME
DAY = 86_400
QUEUED, DONE, STOPPED = JobState.QUEUED, JobState.DONE, JobState.STOPPED


def with_meta(instruction: Instruction, index: int, **flags: bool) -> Instruction:
    """``instruction`` with account ``index`` re-flagged (is_signer / is_writable)."""
    metas = list(instruction.accounts)
    meta = metas[index]
    metas[index] = AccountMeta(
        meta.pubkey,
        is_signer=flags.get("is_signer", meta.is_signer),
        is_writable=flags.get("is_writable", meta.is_writable),
    )
    return Instruction(instruction.program_id, bytes(instruction.data), metas)


def anchor_line(account: str, name: str, code: int, message: str) -> str:
    return (
        f"Program log: AnchorError caused by account: {account}. Error Code: {name}. "
        f"Error Number: {code}. Error Message: {message}."
    )


class Setup:
    """A small world: a market (1-day expiration), payer alice, the keeper as admin."""

    def __init__(self) -> None:
        self.b = WorldBuilder(seed=7)
        self.alice = self.b.wallet("alice", lamports=1_000_000_000)
        self.market = self.b.market(job_expiration=DAY)
        self.admin = self.b.keypair("keeper").pubkey()

    def job(self, *, state: int = DONE, age: int = 2 * DAY, **kwargs: object) -> Pubkey:
        kwargs.setdefault("market", self.market)
        kwargs.setdefault("payer", self.alice)
        return self.b.job(state=state, time_end=NOW - age, **kwargs)  # type: ignore[arg-type]

    def sandbox(self, program: JobsProgram | None = None) -> Sandbox:
        self.world: World = self.b.build()
        return Sandbox(self.world, program)

    def clean(
        self, job: Pubkey, market: Pubkey | None = None, payer: Pubkey | None = None
    ) -> Instruction:
        accounts = ix.CleanAccounts(job, market or self.market, payer or self.alice)
        return ix.clean(accounts, program_id=self.b.program_id)

    def clean_admin(
        self, job: Pubkey, payer: Pubkey | None = None, authority: Pubkey | None = None
    ) -> Instruction:
        accounts = ix.CleanAdminAccounts(job, payer or self.alice, authority or self.admin)
        return ix.clean_admin(accounts, program_id=self.b.program_id)

    def quit_admin(
        self, run: Pubkey, payer: Pubkey, authority: Pubkey | None = None
    ) -> Instruction:
        accounts = ix.QuitAdminAccounts(run, payer, authority or self.admin)
        return ix.quit_admin(accounts, program_id=self.b.program_id)


@pytest.fixture
def s() -> Setup:
    return Setup()


def assert_rejected(outcome: Outcome, name: str, code: int | None = None) -> None:
    assert outcome.failure is not None, "the instruction was accepted"
    assert outcome.error == name, outcome.logs
    assert outcome.custom == code


# --- dispatch ------------------------------------------------------------------------------


def global_discriminator(name: str) -> bytes:
    return hashlib.sha256(f"global:{name}".encode()).digest()[:8]


@pytest.mark.parametrize(
    "data", [global_discriminator("quit"), global_discriminator("finish"), b"", b"\x01"]
)
def test_other_instructions_fail_with_fallback_not_found(s: Setup, data: bytes) -> None:
    sandbox = s.sandbox()
    outcome = sandbox.execute(Instruction(s.b.program_id, data, []))
    assert_rejected(outcome, "InstructionFallbackNotFound", 101)
    assert outcome.logs == [
        (
            "Program log: AnchorError occurred. Error Code: InstructionFallbackNotFound. "
            "Error Number: 101. Error Message: Fallback functions are not supported."
        )
    ]


def test_event_cpi_tag_fails_as_a_build_without_event_cpi(s: Setup) -> None:
    tag = (0x1D9ACB512EA545E4).to_bytes(8, "little")
    outcome = s.sandbox().execute(Instruction(s.b.program_id, tag, []))
    assert_rejected(outcome, "EventInstructionStub", 1500)


def test_trailing_instruction_data_is_ignored_like_anchor(s: Setup) -> None:
    job = s.job()
    clean = s.clean(job)
    longer = Instruction(clean.program_id, bytes(clean.data) + b"extra", list(clean.accounts))
    assert s.sandbox().execute(longer).ok


def test_missing_accounts_fail_with_not_enough_keys(s: Setup) -> None:
    job = s.job()
    clean = s.clean(job)
    short = Instruction(clean.program_id, bytes(clean.data), list(clean.accounts)[:2])
    outcome = s.sandbox().execute(short)
    assert_rejected(outcome, "AccountNotEnoughKeys", 3005)
    assert "caused by account: payer" in outcome.logs[-1]


# --- clean: effects --------------------------------------------------------------------------


def test_clean_closes_the_job_and_refunds_its_rent_to_the_payer(s: Setup) -> None:
    job = s.job()
    sandbox = s.sandbox()
    before = sandbox.accounts[s.alice].lamports
    outcome = sandbox.execute(s.clean(job))
    assert outcome.ok, outcome.logs
    assert outcome.logs == ["Program log: Instruction: Clean"]
    assert outcome.compute_units == CLEAN_UNITS
    assert job not in sandbox.accounts
    assert sandbox.accounts[s.alice].lamports == before + JOB_RENT_LAMPORTS


def test_clean_creates_a_payer_account_that_did_not_exist(s: Setup) -> None:
    ghost = s.b.address("ghost")
    job = s.job(payer=ghost)
    sandbox = s.sandbox()
    assert sandbox.execute(s.clean(job, payer=ghost)).ok
    assert sandbox.accounts[ghost] == Account(JOB_RENT_LAMPORTS, b"", SYSTEM_PROGRAM)


# --- clean: expiry (strict, chain clock) ----------------------------------------------------


def test_clean_rejects_a_job_exactly_at_the_expiration_boundary(s: Setup) -> None:
    job = s.job(age=DAY)  # job_expiration == now - time_end
    outcome = s.sandbox().execute(s.clean(job))
    assert_rejected(outcome, "JobNotExpired", 6005)
    assert outcome.logs[-1] == anchor_line(
        "job", "JobNotExpired", 6005, "The job has not yet expired."
    )


def test_clean_accepts_a_job_one_second_past_the_boundary(s: Setup) -> None:
    job = s.job(age=DAY + 1)
    assert s.sandbox().execute(s.clean(job)).ok


def test_clean_judges_expiry_by_the_chain_clock_given(s: Setup) -> None:
    job = s.job(age=DAY)
    sandbox = s.sandbox()
    assert not sandbox.execute(s.clean(job), unix_timestamp=NOW).ok
    assert sandbox.execute(s.clean(job), unix_timestamp=NOW + 1).ok


def test_clean_uses_whichever_live_market_is_passed(s: Setup) -> None:
    """The program does not check that the market is the job's own: modelled faithfully."""
    short = s.b.market(job_expiration=60)
    job = s.job(age=DAY // 2)  # not expired in its own 1-day market
    sandbox = s.sandbox()
    assert_rejected(sandbox.execute(s.clean(job)), "JobNotExpired", 6005)
    assert sandbox.execute(s.clean(job, market=short)).ok


def test_clean_loads_a_legacy_sized_market(s: Setup) -> None:
    legacy_market = s.b.market(job_expiration=60, legacy_size=True)
    job = s.job(market=legacy_market, age=120)
    assert s.sandbox().execute(s.clean(job, market=legacy_market)).ok


def test_clean_panics_when_the_expiry_subtraction_overflows(s: Setup) -> None:
    job = s.b.job(market=s.market, payer=s.alice, state=DONE, time_end=-(2**63))
    outcome = s.sandbox().execute(s.clean(job))
    assert outcome.error == "ProgramFailedToComplete"
    assert outcome.failure is not None
    assert outcome.failure.builtin == "ProgramFailedToComplete"


# --- clean: constraints ------------------------------------------------------------------


@pytest.mark.parametrize("state", [QUEUED, STOPPED, 1, 7])
def test_clean_rejects_a_job_that_is_not_done(s: Setup, state: int) -> None:
    job = s.job(state=state)
    outcome = s.sandbox().execute(s.clean(job))
    assert_rejected(outcome, "JobInWrongState", 6004)
    assert outcome.logs[-1] == anchor_line(
        "job", "JobInWrongState", 6004, "This job does not have the right status."
    )


def test_clean_rejects_another_payer_with_invalid_payer(s: Setup) -> None:
    job = s.job()
    bob = s.b.wallet("bob")
    outcome = s.sandbox().execute(s.clean(job, payer=bob))
    assert_rejected(outcome, "InvalidPayer", 6008)
    assert outcome.logs[-5:] == [
        anchor_line("job", "InvalidPayer", 6008, "This payer account is not valid."),
        "Program log: Left:",
        f"Program log: {s.alice}",
        "Program log: Right:",
        f"Program log: {bob}",
    ]


def test_clean_checks_the_payer_before_the_state(s: Setup) -> None:
    job = s.job(state=QUEUED)
    outcome = s.sandbox().execute(s.clean(job, payer=s.b.wallet("bob")))
    assert_rejected(outcome, "InvalidPayer", 6008)


def test_clean_requires_a_writable_job(s: Setup) -> None:
    job = s.job()
    outcome = s.sandbox().execute(with_meta(s.clean(job), 0, is_writable=False))
    assert_rejected(outcome, "ConstraintMut", 2000)
    assert outcome.logs[-1] == anchor_line(
        "job", "ConstraintMut", 2000, "A mut constraint was violated"
    )


def test_clean_requires_a_writable_payer(s: Setup) -> None:
    job = s.job()
    outcome = s.sandbox().execute(with_meta(s.clean(job), 2, is_writable=False))
    assert_rejected(outcome, "ConstraintMut", 2000)
    assert "caused by account: payer" in outcome.logs[-1]


def test_clean_checks_the_job_constraints_before_the_payer_flag(s: Setup) -> None:
    job = s.job(age=60)
    outcome = s.sandbox().execute(with_meta(s.clean(job), 2, is_writable=False))
    assert_rejected(outcome, "JobNotExpired", 6005)


def test_clean_cannot_close_a_job_into_itself(s: Setup) -> None:
    own = s.b.address("self-paying job")
    s.b.job(address=own, market=s.market, payer=own, state=DONE, time_end=NOW - 2 * DAY)
    outcome = s.sandbox().execute(s.clean(own, payer=own))
    assert_rejected(outcome, "ConstraintClose", 2011)


# --- clean: loading the accounts ---------------------------------------------------------------


def test_clean_of_a_missing_job_is_account_not_initialized(s: Setup) -> None:
    outcome = s.sandbox().execute(s.clean(s.b.address("closed job")))
    assert_rejected(outcome, "AccountNotInitialized", 3012)
    assert outcome.logs[-1] == anchor_line(
        "job",
        "AccountNotInitialized",
        3012,
        "The program expected this account to be already initialized",
    )


def test_clean_with_a_closed_market_is_account_not_initialized(s: Setup) -> None:
    job = s.job()
    outcome = s.sandbox().execute(s.clean(job, market=s.b.address("closed market")))
    assert_rejected(outcome, "AccountNotInitialized", 3012)
    assert "caused by account: market" in outcome.logs[-1]


def test_clean_of_a_legacy_232_byte_job_does_not_deserialize(s: Setup) -> None:
    job = s.job(legacy=True)
    outcome = s.sandbox().execute(s.clean(job))
    assert_rejected(outcome, "AccountDidNotDeserialize", 3003)


def test_clean_of_a_100_byte_job_does_not_deserialize(s: Setup) -> None:
    garbage = s.b.address("garbage")
    data = JOB_DISCRIMINATOR + bytes(92)
    s.b.raw(garbage, Account(minimum_balance(100), data, s.b.program_id))
    assert_rejected(s.sandbox().execute(s.clean(garbage)), "AccountDidNotDeserialize", 3003)


def test_clean_of_a_too_short_account_finds_no_discriminator(s: Setup) -> None:
    tiny = s.b.raw(
        s.b.address("tiny"), Account(minimum_balance(4), b"\x5b\x10\xa2\x05", s.b.program_id)
    )
    assert_rejected(s.sandbox().execute(s.clean(tiny)), "AccountDiscriminatorNotFound", 3001)


def test_clean_with_a_job_as_market_is_a_discriminator_mismatch(s: Setup) -> None:
    job, not_a_market = s.job(), s.job(age=0)
    outcome = s.sandbox().execute(s.clean(job, market=not_a_market))
    assert_rejected(outcome, "AccountDiscriminatorMismatch", 3002)
    assert "caused by account: market" in outcome.logs[-1]


def test_clean_of_a_job_owned_by_another_program_is_wrong_owner(s: Setup) -> None:
    impostor, other_program = s.b.address("impostor"), s.b.address("other program")
    job = JobAccount(
        bytes(32), bytes(32), s.market, SYSTEM_PROGRAM, s.alice, 0, s.alice, DONE, 0, 0, 60
    )
    s.b.raw(impostor, Account(JOB_RENT_LAMPORTS, encode_job(job), other_program))
    outcome = s.sandbox().execute(s.clean(impostor))
    assert_rejected(outcome, "AccountOwnedByWrongProgram", 3007)
    assert outcome.logs[-4:] == [
        "Program log: Left:",
        f"Program log: {other_program}",
        "Program log: Right:",
        f"Program log: {s.b.program_id}",
    ]


def test_clean_of_a_wallet_is_wrong_owner(s: Setup) -> None:
    assert_rejected(s.sandbox().execute(s.clean(s.alice)), "AccountOwnedByWrongProgram", 3007)


# --- cleanAdmin ------------------------------------------------------------------------------


@pytest.mark.parametrize("state", [QUEUED, DONE, STOPPED, 7])
def test_clean_admin_closes_any_current_job_without_state_market_or_time_checks(
    s: Setup, state: int
) -> None:
    job = s.job(state=state, age=0, market=s.b.address("closed market"))
    sandbox = s.sandbox()
    before = sandbox.accounts[s.alice].lamports
    outcome = sandbox.execute(s.clean_admin(job))
    assert outcome.ok, outcome.logs
    assert outcome.logs == ["Program log: Instruction: CleanAdmin"]
    assert outcome.compute_units == CLEAN_ADMIN_UNITS
    assert job not in sandbox.accounts
    assert sandbox.accounts[s.alice].lamports == before + JOB_RENT_LAMPORTS


def test_clean_admin_rejects_anyone_but_market_admin(s: Setup) -> None:
    job = s.job()
    mallory = s.b.wallet("mallory")
    outcome = s.sandbox().execute(s.clean_admin(job, authority=mallory))
    assert_rejected(outcome, "Unauthorized", 6000)
    assert outcome.logs[-5:] == [
        anchor_line(
            "authority",
            "Unauthorized",
            6000,
            "This account is not authorized to perform this action.",
        ),
        "Program log: Left:",
        f"Program log: {mallory}",
        "Program log: Right:",
        f"Program log: {s.admin}",
    ]


def test_market_admin_is_configurable(s: Setup) -> None:
    job = s.job()
    other_admin = s.b.wallet("other admin")
    program = JobsProgram(
        program_id=s.b.program_id, market_admin=other_admin, nos_mint=s.b.nos_mint
    )
    sandbox = s.sandbox(program)
    assert_rejected(sandbox.execute(s.clean_admin(job)), "Unauthorized", 6000)
    assert sandbox.execute(s.clean_admin(job, authority=other_admin)).ok


def test_clean_admin_requires_the_authority_to_sign(s: Setup) -> None:
    job = s.job()
    outcome = s.sandbox().execute(with_meta(s.clean_admin(job), 2, is_signer=False))
    assert_rejected(outcome, "AccountNotSigner", 3010)
    assert outcome.logs[-1] == anchor_line(
        "authority", "AccountNotSigner", 3010, "The given account did not sign"
    )


def test_clean_admin_checks_the_signature_before_the_address(s: Setup) -> None:
    job = s.job()
    unsigned = with_meta(s.clean_admin(job, authority=s.b.wallet("mallory")), 2, is_signer=False)
    assert_rejected(s.sandbox().execute(unsigned), "AccountNotSigner", 3010)


def test_clean_admin_rejects_another_payer(s: Setup) -> None:
    job = s.job()
    assert_rejected(
        s.sandbox().execute(s.clean_admin(job, payer=s.b.wallet("bob"))), "InvalidPayer", 6008
    )


def test_clean_admin_checks_the_payer_before_the_authority(s: Setup) -> None:
    job = s.job()
    ix_ = s.clean_admin(job, payer=s.b.wallet("bob"), authority=s.b.wallet("mallory"))
    assert_rejected(s.sandbox().execute(ix_), "InvalidPayer", 6008)


def test_clean_admin_requires_writable_job_and_payer(s: Setup) -> None:
    job = s.job()
    sandbox = s.sandbox()
    assert_rejected(
        sandbox.execute(with_meta(s.clean_admin(job), 0, is_writable=False)), "ConstraintMut", 2000
    )
    assert_rejected(
        sandbox.execute(with_meta(s.clean_admin(job), 1, is_writable=False)), "ConstraintMut", 2000
    )


def test_clean_admin_cannot_load_a_legacy_job(s: Setup) -> None:
    job = s.job(legacy=True)
    assert_rejected(s.sandbox().execute(s.clean_admin(job)), "AccountDidNotDeserialize", 3003)


def test_clean_admin_of_a_missing_job_is_account_not_initialized(s: Setup) -> None:
    outcome = s.sandbox().execute(s.clean_admin(s.b.address("gone")))
    assert_rejected(outcome, "AccountNotInitialized", 3012)


# --- quitAdmin -------------------------------------------------------------------------------


def test_quit_admin_closes_the_run_refunds_its_payer_and_leaves_the_job(s: Setup) -> None:
    job = s.job(state=QUEUED, age=0)
    node = s.b.wallet("node")
    run = s.b.run(job=job, node=node, time=NOW - 10)
    sandbox = s.sandbox()
    job_before = sandbox.accounts[job]
    outcome = sandbox.execute(s.quit_admin(run, node))
    assert outcome.ok, outcome.logs
    assert outcome.logs == ["Program log: Instruction: QuitAdmin"]
    assert outcome.compute_units == QUIT_ADMIN_UNITS
    assert run not in sandbox.accounts
    assert sandbox.accounts[node].lamports == s.world.accounts[node].lamports + RUN_RENT_LAMPORTS
    assert sandbox.accounts[job] == job_before


def test_quit_admin_has_no_time_or_job_check(s: Setup) -> None:
    node = s.b.wallet("node")
    run = s.b.run(job=s.b.address("no such job"), node=node, time=NOW + DAY)
    assert s.sandbox().execute(s.quit_admin(run, node)).ok


def test_quit_admin_rejects_another_payer(s: Setup) -> None:
    node = s.b.wallet("node")
    run = s.b.run(job=s.job(state=QUEUED), node=node, time=NOW)
    assert_rejected(s.sandbox().execute(s.quit_admin(run, s.alice)), "InvalidPayer", 6008)


def test_quit_admin_rejects_anyone_but_market_admin(s: Setup) -> None:
    node = s.b.wallet("node")
    run = s.b.run(job=s.job(state=QUEUED), node=node, time=NOW)
    outcome = s.sandbox().execute(s.quit_admin(run, node, authority=node))
    assert_rejected(outcome, "Unauthorized", 6000)


def test_quit_admin_requires_the_authority_to_sign(s: Setup) -> None:
    node = s.b.wallet("node")
    run = s.b.run(job=s.job(state=QUEUED), node=node, time=NOW)
    outcome = s.sandbox().execute(with_meta(s.quit_admin(run, node), 2, is_signer=False))
    assert_rejected(outcome, "AccountNotSigner", 3010)


def test_quit_admin_requires_a_writable_run(s: Setup) -> None:
    node = s.b.wallet("node")
    run = s.b.run(job=s.job(state=QUEUED), node=node, time=NOW)
    outcome = s.sandbox().execute(with_meta(s.quit_admin(run, node), 0, is_writable=False))
    assert_rejected(outcome, "ConstraintMut", 2000)


def test_quit_admin_of_a_closed_run_is_account_not_initialized(s: Setup) -> None:
    outcome = s.sandbox().execute(s.quit_admin(s.b.address("closed run"), s.alice))
    assert_rejected(outcome, "AccountNotInitialized", 3012)


def test_quit_admin_of_a_job_is_a_discriminator_mismatch(s: Setup) -> None:
    job = s.job()
    outcome = s.sandbox().execute(s.quit_admin(job, s.alice))
    assert_rejected(outcome, "AccountDiscriminatorMismatch", 3002)
    assert "caused by account: run" in outcome.logs[-1]


def test_a_closed_account_cannot_be_closed_again(s: Setup) -> None:
    job = s.job()
    sandbox = s.sandbox()
    assert sandbox.execute(s.clean(job)).ok
    assert_rejected(sandbox.execute(s.clean(job)), "AccountNotInitialized", 3012)


def test_failed_calls_are_charged_less_than_a_full_call(s: Setup) -> None:
    job = s.job(age=0)
    outcome = s.sandbox().execute(s.clean(job))
    assert 0 < outcome.compute_units < CLEAN_UNITS
