"""``claim``: one test per check, in the order Anchor makes them, and its effects."""

from __future__ import annotations

import pytest
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from keeper.localnet.builder import DEFAULT_CHAIN_TIME, World, WorldBuilder, minimum_balance
from keeper.localnet.jobs_program import CLAIM_UNITS
from keeper.localnet.metaplex import Metadata, encode_metadata
from keeper.localnet.model import Account
from keeper.localnet.sandbox import Outcome, Sandbox
from keeper.localnet.spl import TokenAccount, encode_token_account
from keeper.program import instructions as ix
from keeper.program.ids import (
    METAPLEX_METADATA_PROGRAM,
    STAKING_PROGRAM,
    SYSTEM_PROGRAM,
    TOKEN_PROGRAM,
)
from keeper.program.layouts import RUN_DISCRIMINATOR, RUN_RENT_LAMPORTS, RunAccount, decode_run
from keeper.program.pda import nft_metadata
from keeper.program.state import JobState

NOW = DEFAULT_CHAIN_TIME
NOS = 1_000_000
PAYER, RUN = 6, 1  # account positions in claim


class Setup:
    """The keeper as node: stake 5,000 NOS, a verified collection NFT; two markets."""

    def __init__(self) -> None:
        self.b = WorldBuilder(seed=3)
        self.node = self.b.keypair("keeper").pubkey()
        self.stake = self.b.stake(authority=self.node, xnos=5_000 * NOS)
        self.collection = self.b.address("collection")
        self.nft = self.b.nft(owner=self.node, collection=self.collection)
        self.open = self.b.market(node_xnos_minimum=1_000 * NOS)
        self.gated = self.b.market(node_access_key=self.collection)
        self.run_key = Keypair.from_seed(bytes(range(32))).pubkey()

    def job(
        self, market: Pubkey | None = None, state: int = JobState.STOPPED, **kwargs: object
    ) -> Pubkey:
        return self.b.job(market=market or self.open, state=state, **kwargs)  # type: ignore[arg-type]

    def sandbox(self) -> Sandbox:
        self.world: World = self.b.build()
        return Sandbox(self.world)

    def claim(self, job: Pubkey, market: Pubkey | None = None, **overrides: Pubkey) -> Instruction:
        fields = {
            "job": job,
            "run": self.run_key,
            "market": market or self.open,
            "stake": self.stake,
            "nft": self.nft.token_account,
            "metadata": self.nft.metadata,
            "payer": self.node,
            "authority": self.node,
        } | overrides
        return ix.claim(ix.ClaimAccounts(**fields), program_id=self.b.program_id)


@pytest.fixture
def s() -> Setup:
    return Setup()


def reflag(instruction: Instruction, index: int, **flags: bool) -> Instruction:
    metas = list(instruction.accounts)
    meta = metas[index]
    metas[index] = AccountMeta(
        meta.pubkey,
        is_signer=flags.get("is_signer", meta.is_signer),
        is_writable=flags.get("is_writable", meta.is_writable),
    )
    return Instruction(instruction.program_id, bytes(instruction.data), metas)


def replace_account(instruction: Instruction, index: int, key: Pubkey) -> Instruction:
    metas = list(instruction.accounts)
    metas[index] = AccountMeta(key, metas[index].is_signer, metas[index].is_writable)
    return Instruction(instruction.program_id, bytes(instruction.data), metas)


def assert_rejected(outcome: Outcome, name: str, code: int | None = None) -> None:
    assert outcome.failure is not None, "the instruction was accepted"
    assert outcome.error == name, outcome.logs
    assert outcome.custom == code


# --- effects -----------------------------------------------------------------------------------


@pytest.mark.parametrize("gated", [False, True])
def test_claim_creates_the_run_with_the_clock_time_and_leaves_the_job(
    s: Setup, gated: bool
) -> None:
    market = s.gated if gated else s.open
    job = s.job(market)
    sandbox = s.sandbox()
    job_before, payer_before = sandbox.accounts[job], sandbox.accounts[s.node].lamports
    outcome = sandbox.execute(s.claim(job, market), unix_timestamp=NOW + 42)
    assert outcome.ok, outcome.logs
    assert outcome.compute_units == CLAIM_UNITS
    assert outcome.logs == [
        "Program log: Instruction: Claim",
        f"Program {SYSTEM_PROGRAM} invoke [2]",
        f"Program {SYSTEM_PROGRAM} success",
    ]
    run = sandbox.accounts[s.run_key]
    assert (run.owner, run.lamports, len(run.data)) == (s.b.program_id, RUN_RENT_LAMPORTS, 120)
    assert run.data[:8] == RUN_DISCRIMINATOR
    assert decode_run(run.data) == RunAccount(
        job=job, node=s.node, payer=s.node, state=0, time=NOW + 42
    )
    assert sandbox.accounts[s.node].lamports == payer_before - RUN_RENT_LAMPORTS
    assert sandbox.accounts[job] == job_before


def test_claim_with_a_separate_fee_payer(s: Setup) -> None:
    payer = s.b.wallet("fee payer")
    job = s.job()
    sandbox = s.sandbox()
    assert sandbox.execute(s.claim(job, payer=payer)).ok
    assert decode_run(sandbox.accounts[s.run_key].data).payer == payer


def test_claim_happily_creates_a_second_run(s: Setup) -> None:
    """The program does not look for existing runs: the keeper must."""
    job = s.job()
    sandbox = s.sandbox()
    assert sandbox.execute(s.claim(job)).ok
    second = s.claim(job, run=Keypair.from_seed(bytes(32)).pubkey())
    assert sandbox.execute(second).ok


def test_claim_into_a_pre_funded_address_tops_it_up(s: Setup) -> None:
    s.b.wallet(s.run_key, lamports=1_000_000)
    job = s.job()
    sandbox = s.sandbox()
    payer_before = sandbox.accounts[s.node].lamports
    outcome = sandbox.execute(s.claim(job))
    assert outcome.ok, outcome.logs
    assert sandbox.accounts[s.run_key].lamports == RUN_RENT_LAMPORTS
    assert sandbox.accounts[s.node].lamports == payer_before - (RUN_RENT_LAMPORTS - 1_000_000)


# --- the run account (`init`) ------------------------------------------------------------------


def test_claim_into_an_existing_run_is_already_in_use(s: Setup) -> None:
    job = s.job()
    s.b.run(job=job, time=NOW, address=s.run_key)
    outcome = s.sandbox().execute(s.claim(job))
    assert_rejected(outcome, "AccountAlreadyInUse", 0)
    assert (
        f"Allocate: account Address {{ address: {s.run_key}, base: None }} already in use"
        in outcome.logs
    )
    assert outcome.logs[-1] == f"Program {SYSTEM_PROGRAM} failed: custom program error: 0x0"


def test_a_repeated_claim_with_the_same_run_key_fails_and_leaves_the_first_run(
    s: Setup,
) -> None:
    """What makes the keeper's claims idempotent: `init` of the run it created before fails."""
    job = s.job()
    sandbox = s.sandbox()
    assert sandbox.execute(s.claim(job), unix_timestamp=NOW).ok
    first = sandbox.accounts[s.run_key]
    payer_before = sandbox.accounts[s.node].lamports

    outcome = sandbox.execute(s.claim(job), unix_timestamp=NOW + 60)

    assert_rejected(outcome, "AccountAlreadyInUse", 0)
    assert sandbox.accounts[s.run_key] == first  # still the first run, its time unchanged
    assert sandbox.accounts[s.node].lamports == payer_before  # no second rent


def test_claim_needs_the_run_to_sign(s: Setup) -> None:
    job = s.job()
    outcome = s.sandbox().execute(reflag(s.claim(job), RUN, is_signer=False))
    assert_rejected(outcome, "PrivilegeEscalation")
    assert outcome.logs[-1] == f"{s.run_key}'s signer privilege escalated"


def test_claim_needs_a_writable_run(s: Setup) -> None:
    job = s.job()
    outcome = s.sandbox().execute(reflag(s.claim(job), RUN, is_writable=False))
    assert_rejected(outcome, "PrivilegeEscalation")
    assert outcome.logs[-1] == f"{s.run_key}'s writable privilege escalated"


def test_claim_creates_the_run_before_any_constraint(s: Setup) -> None:
    """`init` runs before the constraints: an unsigned run beats a job in the wrong state."""
    job = s.job(state=JobState.DONE)
    outcome = s.sandbox().execute(reflag(s.claim(job), RUN, is_signer=False))
    assert_rejected(outcome, "PrivilegeEscalation")


def test_claim_loads_every_account_before_creating_the_run(s: Setup) -> None:
    job = s.job()
    unsigned_run = reflag(s.claim(job, stake=s.b.address("no stake")), RUN, is_signer=False)
    assert_rejected(s.sandbox().execute(unsigned_run), "AccountNotInitialized", 3012)


def test_claim_payer_must_sign(s: Setup) -> None:
    payer = s.b.wallet("fee payer")
    job = s.job()
    outcome = s.sandbox().execute(reflag(s.claim(job, payer=payer), PAYER, is_signer=False))
    assert_rejected(outcome, "AccountNotSigner", 3010)
    assert "caused by account: payer" in outcome.logs[-1]


def test_claim_read_only_payer_fails_creating_the_run(s: Setup) -> None:
    payer = s.b.wallet("fee payer")
    job = s.job()
    outcome = s.sandbox().execute(reflag(s.claim(job, payer=payer), PAYER, is_writable=False))
    assert_rejected(outcome, "PrivilegeEscalation")
    assert outcome.logs[-1] == f"{payer}'s writable privilege escalated"


def test_claim_payer_without_the_rent_fails_in_the_system_program(s: Setup) -> None:
    payer = s.b.wallet("poor payer", lamports=1_000)
    job = s.job()
    outcome = s.sandbox().execute(s.claim(job, payer=payer))
    assert_rejected(outcome, "ResultWithNegativeLamports", 1)
    assert f"Transfer: insufficient lamports 1000, need {RUN_RENT_LAMPORTS}" in outcome.logs


def test_claim_authority_must_sign(s: Setup) -> None:
    payer = s.b.wallet("fee payer")
    job = s.job()
    outcome = s.sandbox().execute(reflag(s.claim(job, payer=payer), 7, is_signer=False))
    assert_rejected(outcome, "AccountNotSigner", 3010)
    assert "caused by account: authority" in outcome.logs[-1]


def test_claim_needs_the_system_program(s: Setup) -> None:
    job = s.job()
    outcome = s.sandbox().execute(replace_account(s.claim(job), 8, TOKEN_PROGRAM))
    assert_rejected(outcome, "InvalidProgramId", 3008)


def test_claim_needs_an_executable_system_program(s: Setup) -> None:
    job = s.job()
    sandbox = s.sandbox()
    sandbox.accounts[SYSTEM_PROGRAM] = Account(1, b"", SYSTEM_PROGRAM)
    assert_rejected(sandbox.execute(s.claim(job)), "InvalidProgramExecutable", 3009)


# --- job -------------------------------------------------------------------------------------


@pytest.mark.parametrize("state", [JobState.QUEUED, JobState.DONE, 1])
def test_claim_rejects_a_job_that_is_not_stopped(s: Setup, state: int) -> None:
    job = s.job(state=state)
    assert_rejected(s.sandbox().execute(s.claim(job)), "JobInWrongState", 6004)


def test_claim_rejects_a_market_that_is_not_the_jobs(s: Setup) -> None:
    job = s.job(s.open)
    outcome = s.sandbox().execute(s.claim(job, market=s.gated))
    assert_rejected(outcome, "InvalidMarketAccount", 6000)
    assert "Error Code: InvalidMarketAccount. Error Number: 6000" in outcome.logs[-5]


def test_claim_of_a_legacy_job_does_not_deserialize(s: Setup) -> None:
    job = s.job(legacy=True)
    assert_rejected(s.sandbox().execute(s.claim(job)), "AccountDidNotDeserialize", 3003)


def test_claim_requires_a_writable_job(s: Setup) -> None:
    job = s.job()
    assert_rejected(
        s.sandbox().execute(reflag(s.claim(job), 0, is_writable=False)), "ConstraintMut", 2000
    )


def test_claim_in_a_closed_market_is_account_not_initialized(s: Setup) -> None:
    gone = s.b.address("closed market")
    job = s.job(gone)
    outcome = s.sandbox().execute(s.claim(job, market=gone))
    assert_rejected(outcome, "AccountNotInitialized", 3012)
    assert "caused by account: market" in outcome.logs[-1]


# --- stake ------------------------------------------------------------------------------------


def test_claim_rejects_someone_elses_stake_as_unauthorized(s: Setup) -> None:
    other = s.b.keypair("other node").pubkey()
    other_stake = s.b.stake(authority=other, xnos=5_000 * NOS)
    job = s.job()
    outcome = s.sandbox().execute(s.claim(job, stake=other_stake))
    assert_rejected(outcome, "Unauthorized", 6000)
    assert "caused by account: stake" in outcome.logs[-5]


def test_claim_checks_the_stake_authority_before_its_amount(s: Setup) -> None:
    other = s.b.keypair("other node").pubkey()
    poor_other_stake = s.b.stake(authority=other, xnos=1)
    job = s.job()
    outcome = s.sandbox().execute(s.claim(job, stake=poor_other_stake))
    assert_rejected(outcome, "Unauthorized", 6000)


def test_claim_rejects_a_stake_below_the_market_minimum(s: Setup) -> None:
    rich = s.b.market(node_xnos_minimum=5_000 * NOS + 1)
    job = s.job(rich)
    outcome = s.sandbox().execute(s.claim(job, market=rich))
    assert_rejected(outcome, "NodeNotEnoughStake", 6013)


def test_claim_accepts_a_stake_exactly_at_the_minimum(s: Setup) -> None:
    exact = s.b.market(node_xnos_minimum=5_000 * NOS)
    job = s.job(exact)
    assert s.sandbox().execute(s.claim(job, market=exact)).ok


def test_claim_rejects_a_stake_that_is_not_the_authoritys_pda(s: Setup) -> None:
    copy = s.b.stake(authority=s.node, xnos=5_000 * NOS, address=s.b.address("stake copy"))
    job = s.job()
    outcome = s.sandbox().execute(s.claim(job, stake=copy))
    assert_rejected(outcome, "InvalidStakeAccount", 6012)
    assert "Error Code: InvalidStakeAccount. Error Number: 6012" in outcome.logs[-5]


def test_claim_checks_stake_minimum_before_the_stake_address(s: Setup) -> None:
    rich = s.b.market(node_xnos_minimum=10**18)
    copy = s.b.stake(authority=s.node, xnos=1, address=s.b.address("stake copy"))
    job = s.job(rich)
    outcome = s.sandbox().execute(s.claim(job, market=rich, stake=copy))
    assert_rejected(outcome, "NodeNotEnoughStake", 6013)


def test_claim_without_a_stake_account_is_account_not_initialized(s: Setup) -> None:
    job = s.job()
    outcome = s.sandbox().execute(s.claim(job, stake=s.b.address("no stake")))
    assert_rejected(outcome, "AccountNotInitialized", 3012)


def test_claim_rejects_a_stake_not_owned_by_the_staking_program(s: Setup) -> None:
    forged = s.b.address("forged stake")
    s.b.raw(forged, Account(minimum_balance(120), bytes(120), s.b.program_id))
    job = s.job()
    outcome = s.sandbox().execute(s.claim(job, stake=forged))
    assert_rejected(outcome, "AccountOwnedByWrongProgram", 3007)
    assert outcome.logs[-1] == f"Program log: {STAKING_PROGRAM}"


# --- nft and metadata ------------------------------------------------------------------------


def test_claim_in_an_open_market_ignores_nft_owner_amount_and_metadata(s: Setup) -> None:
    other = s.b.keypair("someone").pubkey()
    foreign_nft = s.b.nft(owner=other, amount=0)
    job = s.job(s.open)
    outcome = s.sandbox().execute(
        s.claim(job, nft=foreign_nft.token_account, metadata=s.b.address("anything"))
    )
    assert outcome.ok, outcome.logs


def test_claim_without_an_nft_account_is_account_not_initialized_even_in_an_open_market(
    s: Setup,
) -> None:
    job = s.job(s.open)
    outcome = s.sandbox().execute(s.claim(job, nft=s.b.address("no token account")))
    assert_rejected(outcome, "AccountNotInitialized", 3012)
    assert "caused by account: nft" in outcome.logs[-1]


def test_claim_nft_must_be_an_spl_token_account(s: Setup) -> None:
    job = s.job(s.open)
    outcome = s.sandbox().execute(s.claim(job, nft=s.stake))
    assert_rejected(outcome, "AccountOwnedByWrongProgram", 3007)


def _token_account(s: Setup, data: bytes) -> Pubkey:
    return s.b.raw(
        s.b.address(f"token {data[:4].hex()} {len(data)}"),
        Account(minimum_balance(len(data)), data, TOKEN_PROGRAM),
    )


def test_claim_nft_of_the_wrong_size_is_invalid_account_data(s: Setup) -> None:
    bad = _token_account(s, bytes(82))
    job = s.job(s.open)
    outcome = s.sandbox().execute(s.claim(job, nft=bad))
    assert_rejected(outcome, "InvalidAccountData")
    assert outcome.failure is not None
    assert outcome.failure.builtin == "InvalidAccountData"
    assert outcome.logs[-1] == (
        "Program log: ProgramError caused by account: nft. Error Code: InvalidAccountData. "
        "Error Number: 17179869184. Error Message: An account's data contents was invalid."
    )


def test_claim_nft_that_is_uninitialized_is_rejected(s: Setup) -> None:
    bad = _token_account(s, bytes(165))
    job = s.job(s.open)
    assert_rejected(s.sandbox().execute(s.claim(job, nft=bad)), "UninitializedAccount")


def test_claim_gated_nft_must_belong_to_the_authority(s: Setup) -> None:
    other = s.b.keypair("someone").pubkey()
    foreign = s.b.nft(owner=other, collection=s.collection)
    job = s.job(s.gated)
    outcome = s.sandbox().execute(
        s.claim(job, market=s.gated, nft=foreign.token_account, metadata=foreign.metadata)
    )
    assert_rejected(outcome, "NodeNftWrongOwner", 6016)


def test_claim_gated_nft_must_hold_a_token(s: Setup) -> None:
    empty = s.b.nft(owner=s.node, amount=0, collection=s.collection)
    job = s.job(s.gated)
    outcome = s.sandbox().execute(
        s.claim(job, market=s.gated, nft=empty.token_account, metadata=empty.metadata)
    )
    assert_rejected(outcome, "NodeNftInvalidAmount", 6017)


def test_claim_gated_metadata_must_be_the_mints_metadata_pda(s: Setup) -> None:
    other = s.b.nft(owner=s.node, collection=s.collection)
    job = s.job(s.gated)
    outcome = s.sandbox().execute(s.claim(job, market=s.gated, metadata=other.metadata))
    assert_rejected(outcome, "NodeKeyInvalidCollection", 6018)
    assert "caused by account: metadata" in outcome.logs[-1]


@pytest.mark.parametrize(
    ("collection", "verified"),
    [(None, True), ("other", True), ("right", False)],
    ids=["none", "other", "unverified"],
)
def test_claim_gated_metadata_must_name_the_verified_collection(
    s: Setup, collection: str | None, verified: bool
) -> None:
    key = {"right": s.collection, "other": s.b.address("other collection"), None: None}[collection]
    nft = s.b.nft(owner=s.node, collection=key, verified=verified)
    job = s.job(s.gated)
    outcome = s.sandbox().execute(
        s.claim(job, market=s.gated, nft=nft.token_account, metadata=nft.metadata)
    )
    assert_rejected(outcome, "NodeKeyInvalidCollection", 6018)


def test_claim_gated_metadata_that_does_not_parse_is_rejected(s: Setup) -> None:
    mint = s.b.address("bare mint")
    token = TokenAccount(mint=mint, owner=s.node, amount=1)
    token_key = s.b.raw(
        s.b.address("bare token"),
        Account(minimum_balance(165), encode_token_account(token), TOKEN_PROGRAM),
    )
    metadata = encode_metadata(Metadata(update_authority=s.node, mint=mint))[:40]  # cut short
    s.b.raw(nft_metadata(mint), Account(minimum_balance(40), metadata, METAPLEX_METADATA_PROGRAM))
    job = s.job(s.gated)
    outcome = s.sandbox().execute(
        s.claim(job, market=s.gated, nft=token_key, metadata=nft_metadata(mint))
    )
    assert_rejected(outcome, "NodeKeyInvalidCollection", 6018)


def test_claim_checks_the_stake_before_the_nft(s: Setup) -> None:
    rich_gated = s.b.market(node_access_key=s.collection, node_xnos_minimum=10**18)
    other = s.b.nft(owner=s.b.keypair("someone").pubkey(), amount=0)
    job = s.job(rich_gated)
    outcome = s.sandbox().execute(s.claim(job, market=rich_gated, nft=other.token_account))
    assert_rejected(outcome, "NodeNotEnoughStake", 6013)
