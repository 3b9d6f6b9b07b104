"""The one account builder: sizes, rent, deterministic keys, and bytes the decoders read back."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from solders.pubkey import Pubkey

from keeper.localnet.builder import DEFAULT_CHAIN_TIME, KEEPER, WorldBuilder, minimum_balance
from keeper.localnet.bulk_jobs import JobColumns, encode_jobs, key_column
from keeper.localnet.metaplex import (
    MAX_METADATA_LEN,
    BorshError,
    Collection,
    Creator,
    Metadata,
    encode_metadata,
    has_verified_collection,
    read_metadata,
)
from keeper.localnet.model import Account
from keeper.localnet.spl import (
    MINT_SIZE,
    TOKEN_ACCOUNT_SIZE,
    TokenAccount,
    TokenUnpackError,
    encode_token_account,
    unpack_token_account,
)
from keeper.program.ids import (
    COMPUTE_BUDGET_PROGRAM,
    DEVNET,
    METAPLEX_METADATA_PROGRAM,
    STAKING_PROGRAM,
    SYSTEM_PROGRAM,
    TOKEN_PROGRAM,
)
from keeper.program.layouts import (
    JOB_RENT_LAMPORTS,
    MARKET_RENT_LAMPORTS,
    RUN_RENT_LAMPORTS,
    JobAccount,
    decode_job,
    decode_market,
    decode_run,
    decode_stake,
    encode_job,
)
from keeper.program.pda import nft_metadata, node_stake

NOW = DEFAULT_CHAIN_TIME


def test_rent_matches_the_facts_page() -> None:
    assert minimum_balance(240) == JOB_RENT_LAMPORTS == 2_561_280
    assert minimum_balance(120) == RUN_RENT_LAMPORTS == 1_726_080
    assert minimum_balance(10_224) == MARKET_RENT_LAMPORTS == 72_049_920


def test_defaults_devnet_ids_and_a_fixed_2026_clock_with_the_keeper_as_admin() -> None:
    world = WorldBuilder().build()
    assert world.program_id == DEVNET.jobs_program
    assert world.nos_mint == DEVNET.nos_mint
    assert world.unix_timestamp == NOW == 1_772_442_000  # 2026-03-02 09:00:00 UTC
    assert world.market_admin == world.keeper.pubkey() == world.labels[KEEPER]
    assert world.accounts[world.market_admin].owner == SYSTEM_PROGRAM


def test_market_admin_can_be_another_key() -> None:
    admin = Pubkey.new_unique()
    assert WorldBuilder(market_admin=admin).build().market_admin == admin


def test_keys_are_deterministic_per_seed_and_name() -> None:
    first, again, other = WorldBuilder(seed=1), WorldBuilder(seed=1), WorldBuilder(seed=2)
    assert first.keypair("alice") == again.keypair("alice")
    assert first.keypair("alice") != other.keypair("alice")
    assert first.address("job") == again.address("job") != other.address("job")
    assert first.address() != first.address()  # unlabelled: fresh every time


def test_program_accounts_are_executable() -> None:
    world = WorldBuilder(program_id=Pubkey.new_unique()).build()
    for program in (
        world.program_id,
        SYSTEM_PROGRAM,
        TOKEN_PROGRAM,
        STAKING_PROGRAM,
        METAPLEX_METADATA_PROGRAM,
        COMPUTE_BUDGET_PROGRAM,
    ):
        assert world.accounts[program].executable, program


def test_market_round_trips_with_its_queue_and_not_its_stale_tail() -> None:
    b = WorldBuilder()
    queued, stale = Pubkey.new_unique(), Pubkey.new_unique()
    key = b.market(
        job_expiration=600, node_xnos_minimum=2**100, queue=[queued], stale_tail=[stale], label="m"
    )
    account = b.build().accounts[key]
    assert (len(account.data), account.lamports, account.owner) == (
        10_224,
        MARKET_RENT_LAMPORTS,
        b.program_id,
    )
    market = decode_market(account.data)
    assert (market.job_expiration, market.node_xnos_minimum, market.queue, market.queue_type) == (
        600,
        2**100,
        (queued,),
        0,
    )
    assert bytes(stale) in account.data


def test_legacy_market_is_3376_bytes_and_an_empty_queue_is_type_255() -> None:
    b = WorldBuilder()
    account = b.build().accounts[b.market(legacy_size=True)]
    assert len(account.data) == 3_376
    assert account.lamports == minimum_balance(3_376)
    assert decode_market(account.data).queue_type == 255


def test_job_round_trips_current_and_legacy() -> None:
    b = WorldBuilder()
    market, payer = b.market(), b.wallet("alice")
    current = b.job(market=market, state=2, payer=payer, time_end=NOW - 5, timeout=7_200, price=9)
    legacy = b.job(market=market, state=2, payer=payer, legacy=True)
    accounts = b.build().accounts
    job = decode_job(accounts[current].data)
    assert (job.market, job.payer, job.state, job.time_end, job.timeout, job.price) == (
        market,
        payer,
        2,
        NOW - 5,
        7_200,
        9,
    )
    assert (len(accounts[current].data), accounts[current].lamports) == (240, JOB_RENT_LAMPORTS)
    assert len(accounts[legacy].data) == 232
    assert decode_job(accounts[legacy].data).is_legacy


def test_job_without_timeout_must_say_legacy() -> None:
    b = WorldBuilder()
    with pytest.raises(ValueError, match="legacy"):
        b.job(market=b.market(), state=2, timeout=None)


def test_run_round_trips_and_defaults_its_payer_to_the_node() -> None:
    b = WorldBuilder()
    job, node = Pubkey.new_unique(), b.wallet("node")
    account = b.build().accounts[b.run(job=job, node=node, time=NOW - 60)]
    run = decode_run(account.data)
    assert (run.job, run.node, run.payer, run.state, run.time) == (job, node, node, 0, NOW - 60)
    assert (len(account.data), account.lamports) == (120, RUN_RENT_LAMPORTS)


def test_stake_sits_at_the_node_stake_pda_of_the_staking_program() -> None:
    b = WorldBuilder()
    authority = b.keypair("node").pubkey()
    key = b.stake(authority=authority, xnos=123)
    assert key == node_stake(authority, DEVNET.nos_mint)
    account = b.build().accounts[key]
    assert account.owner == STAKING_PROGRAM
    stake = decode_stake(account.data)
    assert (stake.authority, stake.xnos, stake.amount) == (authority, 123, 123)


def test_nft_is_a_token_account_a_mint_and_metadata_at_the_pda() -> None:
    b = WorldBuilder()
    owner, collection = b.keypair("node").pubkey(), Pubkey.new_unique()
    nft = b.nft(owner=owner, collection=collection, label="nft")
    accounts = b.build().accounts
    token = unpack_token_account(accounts[nft.token_account].data)
    assert (token.mint, token.owner, token.amount) == (nft.mint, owner, 1)
    assert accounts[nft.token_account].owner == TOKEN_PROGRAM
    assert len(accounts[nft.mint].data) == MINT_SIZE
    assert nft.metadata == nft_metadata(nft.mint)
    assert accounts[nft.metadata].owner == METAPLEX_METADATA_PROGRAM
    assert has_verified_collection(accounts[nft.metadata].data, collection)
    assert not has_verified_collection(accounts[nft.metadata].data, Pubkey.new_unique())
    assert b.labels["nft_metadata"] == nft.metadata


def test_labels_are_unique_and_addresses_hold_one_account() -> None:
    b = WorldBuilder()
    market = b.market(label="m")
    with pytest.raises(ValueError, match="label"):
        b.label("m", Pubkey.new_unique())
    with pytest.raises(ValueError, match="already holds"):
        b.raw(market, Account(1, b"", SYSTEM_PROGRAM))
    with pytest.raises(ValueError, match="needs a label"):
        b.label(None, market, expect="leave:queued")


def test_bulk_jobs_equal_single_encodes() -> None:
    rng = np.random.default_rng(5)
    count = 7
    keys = [key_column(rng.bytes(32 * count)) for _ in range(3)]
    ends, starts = rng.integers(-(2**40), 2**40, count), rng.integers(0, 2**40, count)
    columns = JobColumns(
        market=keys[0],
        payer=keys[1],
        node=keys[2],
        state=2,
        time_end=ends,
        time_start=starts,
        price=77,
        timeout=900,
    )
    rows = encode_jobs(count, columns)
    for i in range(count):
        job = JobAccount(
            ipfs_job=bytes(32),
            ipfs_result=bytes(32),
            market=Pubkey.from_bytes(keys[0][i].tobytes()),
            node=Pubkey.from_bytes(keys[2][i].tobytes()),
            payer=Pubkey.from_bytes(keys[1][i].tobytes()),
            price=77,
            project=Pubkey.from_bytes(bytes(32)),
            state=2,
            time_end=int(ends[i]),
            time_start=int(starts[i]),
            timeout=900,
        )
        assert rows[i * 240 : (i + 1) * 240] == encode_job(job)


def test_jobs_bulk_adds_program_owned_rent_exempt_jobs() -> None:
    b = WorldBuilder()
    keys = np.random.default_rng(1).bytes(32 * 3)
    market, payer = bytes(b.market()), bytes(b.wallet("p"))
    b.jobs_bulk(
        keys,
        JobColumns(market=key_column(market)[0], payer=key_column(payer)[0], state=2, time_end=NOW),
    )
    account = b.build().accounts[Pubkey.from_bytes(keys[32:64])]
    assert (account.owner, account.lamports) == (b.program_id, JOB_RENT_LAMPORTS)
    assert decode_job(account.data).time_end == NOW


# --- SPL token and Metaplex bytes --------------------------------------------------------------


def test_token_account_round_trip_and_spl_token_refusals() -> None:
    account = TokenAccount(
        mint=Pubkey.new_unique(), owner=Pubkey.new_unique(), amount=5, delegate=Pubkey.new_unique()
    )
    data = encode_token_account(account)
    assert len(data) == TOKEN_ACCOUNT_SIZE
    assert unpack_token_account(data) == account
    for bad, error in [
        (data[:-1], "InvalidAccountData"),
        (data[:72] + b"\x02\0\0\0" + data[76:], "InvalidAccountData"),  # COption tag
        (data[:108] + b"\x03" + data[109:], "InvalidAccountData"),  # state byte
        (data[:108] + b"\x00" + data[109:], "UninitializedAccount"),
    ]:
        with pytest.raises(TokenUnpackError) as raised:
            unpack_token_account(bad)
        assert raised.value.name == error


def test_metadata_round_trip() -> None:
    meta = Metadata(
        update_authority=Pubkey.new_unique(),
        mint=Pubkey.new_unique(),
        name="Node",
        creators=(Creator(Pubkey.new_unique(), True, 100),),
        edition_nonce=254,
        token_standard=4,
        collection=Collection(True, Pubkey.new_unique()),
    )
    data = encode_metadata(meta)
    assert len(data) == MAX_METADATA_LEN
    read = read_metadata(data)
    assert read.name.rstrip("\0") == "Node"
    assert (read.creators, read.edition_nonce, read.token_standard, read.collection) == (
        meta.creators,
        254,
        4,
        meta.collection,
    )


def test_metadata_must_be_metadata_v1() -> None:
    data = encode_metadata(Metadata(update_authority=Pubkey.new_unique(), mint=Pubkey.new_unique()))
    with pytest.raises(BorshError, match="DataTypeMismatch"):
        read_metadata(b"\x06" + data[1:])
    with pytest.raises(BorshError):
        read_metadata(b"")


def test_a_corrupt_metadata_tail_drops_the_collection_like_metaplex() -> None:
    collection = Pubkey.new_unique()
    meta = Metadata(
        update_authority=collection,
        mint=collection,
        token_standard=0,
        collection=Collection(True, collection),
    )
    data = bytearray(encode_metadata(meta))
    assert has_verified_collection(bytes(data), collection)
    # key, 2 keys, name/symbol/uri (NUL padded), fee, no creators, 2 bools, no edition nonce:
    token_standard = 1 + 64 + (4 + 32) + (4 + 10) + (4 + 200) + 2 + 1 + 2 + 1
    assert data[token_standard : token_standard + 3] == b"\x01\x00\x01"  # Some(0), Some(collection)
    data[token_standard + 1] = 9  # no such TokenStandard: Metaplex drops the whole tail
    assert read_metadata(bytes(data)).collection is None
    assert not has_verified_collection(bytes(data), collection)


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=400))
def test_metadata_reader_never_raises_anything_but_borsh_errors(data: bytes) -> None:
    with contextlib.suppress(BorshError):
        read_metadata(b"\x04" + data)
