"""``claim``: a node takes over a Stopped job by creating a new RunAccount.

Accounts: job (w), run (w, s, ``init``), market, stake, nft, metadata, payer (w, s),
authority (s), systemProgram. Anchor's order: deserialize every account except ``run``;
create ``run`` through the System program (``init``: a failed CPI ends everything, so an
unsigned or read-only run or payer fails with PrivilegeEscalation before any constraint);
then the constraints field by field — job, stake (``has_one`` before ``constraint`` before
``address``), nft, metadata, payer. The job is not changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from keeper.localnet import anchor_checks as anchor
from keeper.localnet.metaplex import has_verified_collection
from keeper.localnet.spl import TokenAccount, TokenUnpackError, unpack_token_account
from keeper.localnet.system_cpi import (
    allocate_and_assign,
    create_account,
    transfer,
    working_account,
)
from keeper.program.ids import SYSTEM_PROGRAM, TOKEN_PROGRAM
from keeper.program.layouts import (
    RUN_ALLOCATED_SIZE,
    RunAccount,
    decode_job,
    decode_market,
    decode_stake,
    encode_run,
)
from keeper.program.pda import nft_metadata, node_stake
from keeper.program.state import JobState

if TYPE_CHECKING:
    from solders.pubkey import Pubkey

    from keeper.localnet.account_kinds import AccountKinds
    from keeper.localnet.invocation import Invocation
    from keeper.localnet.model import AccountRef

# Where the derive sits: Anchor's generated `require_keys_neq!` reports this source.
_DERIVE_SOURCE: Final = "programs/nosana-jobs/src/instructions/claim.rs:5"
# The CPI into the System program and its bookkeeping.
CREATE_RUN_UNITS: Final = 3_500


@dataclass(frozen=True, slots=True)
class ClaimRules:
    program_id: Pubkey
    nos_mint: Pubkey  # the program's compiled-in NOS_TOKEN: seeds the stake PDA
    kinds: AccountKinds


def load_token_account(ref: AccountRef, field: str) -> TokenAccount:
    """``Account<'info, TokenAccount>``: exists, owned by SPL Token, unpacks as spl-token does."""
    account = ref.account
    if account is None or not anchor.exists(account):
        raise anchor.anchor_error("AccountNotInitialized", account=field)
    if account.owner != TOKEN_PROGRAM:
        raise anchor.anchor_error(
            "AccountOwnedByWrongProgram", account=field, pubkeys=(account.owner, TOKEN_PROGRAM)
        )
    try:
        return unpack_token_account(account.data)
    except TokenUnpackError as error:
        raise anchor.program_error(error.name, account=field) from None


def claim(call: Invocation, rules: ClaimRules) -> None:
    job_ref, job_data = call.load(0, "job", rules.kinds.job)
    run_ref = call.account(1, None)  # `init`: taken as is, checked when created
    market_ref, market_data = call.load(2, "market", rules.kinds.market)
    stake_ref, stake_data = call.load(3, "stake", rules.kinds.stake)
    nft = load_token_account(call.account(4, "nft"), "nft")
    metadata_ref = call.account(5, "metadata")
    payer_ref = call.signer(6, "payer")
    authority_ref = call.signer(7, "authority")
    anchor.require_program(call.account(8, "system_program"), "system_program", SYSTEM_PROGRAM)

    _init_run(call, run_ref, payer_ref, rules.program_id)

    job, market, stake = decode_job(job_data), decode_market(market_data), decode_stake(stake_data)
    anchor.require_mut(job_ref, "job")
    anchor.require_has_one("job", job.market, market_ref.key, "InvalidMarketAccount")
    anchor.require(job.state == JobState.STOPPED, "job", "JobInWrongState")

    anchor.require_has_one("stake", stake.authority, authority_ref.key, "Unauthorized")
    enough = stake.xnos >= market.node_xnos_minimum
    anchor.require(enough, "stake", "NodeNotEnoughStake")
    expected_stake = node_stake(authority_ref.key, rules.nos_mint)
    anchor.require_address("stake", stake_ref.key, expected_stake, "InvalidStakeAccount")

    # In an open market (access key = system program) the NFT's owner, amount and
    # metadata are not looked at; the NFT must still be a token account (loaded above).
    gated = market.node_access_key != SYSTEM_PROGRAM
    owned = nft.owner == authority_ref.key
    anchor.require(not gated or owned, "nft", "NodeNftWrongOwner")
    anchor.require(not gated or nft.amount >= 1, "nft", "NodeNftInvalidAmount")
    collection_ok = not gated or _verified_collection(metadata_ref, nft, market.node_access_key)
    anchor.require(collection_ok, "metadata", "NodeKeyInvalidCollection")
    anchor.require_mut(payer_ref, "payer")

    run = RunAccount(
        job=job_ref.key, node=authority_ref.key, payer=payer_ref.key, state=0, time=call.now
    )
    working_account(run_ref).data = encode_run(run)


def _verified_collection(metadata_ref: AccountRef, nft: TokenAccount, access_key: Pubkey) -> bool:
    """The program's ``metadata_constraint``: the mint's metadata PDA, verified collection."""
    if metadata_ref.key != nft_metadata(nft.mint):
        return False
    return has_verified_collection(working_account(metadata_ref).data, access_key)


def _init_run(call: Invocation, run_ref: AccountRef, payer_ref: AccountRef, owner: Pubkey) -> None:
    """Anchor's ``init, payer = payer, space = RunAccount::SIZE`` for a non-PDA account."""
    call.units += CREATE_RUN_UNITS
    cpi_logs: list[str] = []
    rent = call.ctx.rent_exempt_minimum(RUN_ALLOCATED_SIZE)
    current = working_account(run_ref).lamports
    if current == 0:
        create_account(
            cpi_logs,
            payer=payer_ref,
            new=run_ref,
            lamports=rent,
            space=RUN_ALLOCATED_SIZE,
            owner=owner,
        )
    else:
        # Someone funded the address already: top it up, then allocate and assign.
        if payer_ref.key == run_ref.key:
            raise anchor.anchor_error(
                "TryingToInitPayerAsProgramAccount",
                source=_DERIVE_SOURCE,
                pubkeys=(payer_ref.key, run_ref.key),
            )
        missing = max(rent, 1) - current
        if missing > 0:
            transfer(cpi_logs, source=payer_ref, destination=run_ref, lamports=missing)
        allocate_and_assign(cpi_logs, target=run_ref, space=RUN_ALLOCATED_SIZE, owner=owner)
    call.ctx.logs.extend(cpi_logs)
    # The constraints `init` implies, after the account exists.
    anchor.require_mut(run_ref, "run")
    if not run_ref.is_signer:
        raise anchor.anchor_error("ConstraintSigner", account="run")
    account = working_account(run_ref)
    if account.lamports < call.ctx.rent_exempt_minimum(len(account.data)):
        raise anchor.anchor_error("ConstraintRentExempt", account="run")
