"""Golden instructions, their account metas against the published IDL, and the allow-list.

Each golden instruction is written as data hex (the discriminator from the facts page)
and account metas in program order as ``(address, signer, writable)``.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from solders.compute_budget import request_heap_frame
from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer

from keeper.program import instructions
from keeper.program.ids import COMPUTE_BUDGET_PROGRAM, DEVNET, MAINNET, SYSTEM_PROGRAM
from keeper.program.instructions import (
    ClaimAccounts,
    CleanAccounts,
    CleanAdminAccounts,
    MaintenanceInstruction,
    QuitAdminAccounts,
)

PROGRAM = MAINNET.jobs_program

JOB = Pubkey.from_string("DySeBLWJ6vJiLwLvcVf5Wfj2a2pFqqTDH1xEDMXVCMHx")  # c0c1..df
MARKET = Pubkey.from_string("5KporntzQkHiVMKxnFuUGcwPKhtVdhaFkneEkhnoZi1U")  # 4041..5f
PAYER = Pubkey.from_string("9edj24heFqJDR9LShNnGteLCwsMNjmWjWuJEV2f9P2ei")  # 8081..9f
RUN = Pubkey.from_string("25iczLYW2S2qo1KbqvFNJbtmc5nqJectwCejxTe3hiXY")  # 1011..2f
ADMIN = MAINNET.market_admin
STAKE = Pubkey.from_string("4F85ZySpwyY6FuKqoUgmccbBRAXGrgb8pFyjpd5DcNrA")  # 3031..4f
NFT = Pubkey.from_string("6QXY9cM9sX3LioL5m38AvdHbEFFiQiZNhKJjgnWPX3An")  # 5051..6f
METADATA = Pubkey.from_string("8ZvzjFFUo4YbBhLKibZaEdz13Kz9xkXcaNdjYwwZRhVQ")  # 7071..8f
NODE = Pubkey.from_string("7VEGSRoKLHnxxFLCjpLsaddo8ncwBjYVdqyEcsDyUNL6")  # 6061..7f

CLEAN = instructions.clean(CleanAccounts(job=JOB, market=MARKET, payer=PAYER))
CLEAN_ADMIN = instructions.clean_admin(CleanAdminAccounts(job=JOB, payer=PAYER, authority=ADMIN))
QUIT_ADMIN = instructions.quit_admin(QuitAdminAccounts(run=RUN, payer=PAYER, authority=ADMIN))
CLAIM = instructions.claim(
    ClaimAccounts(
        job=JOB,
        run=RUN,
        market=MARKET,
        stake=STAKE,
        nft=NFT,
        metadata=METADATA,
        payer=PAYER,
        authority=NODE,
    )
)
BUILT = {
    MaintenanceInstruction.CLEAN: CLEAN,
    MaintenanceInstruction.CLEAN_ADMIN: CLEAN_ADMIN,
    MaintenanceInstruction.QUIT_ADMIN: QUIT_ADMIN,
    MaintenanceInstruction.CLAIM: CLAIM,
}

Meta = tuple[str, bool, bool]  # address, signer, writable
GOLDEN: dict[MaintenanceInstruction, tuple[str, list[Meta]]] = {
    MaintenanceInstruction.CLEAN: (
        "fabf388096fb0167",
        [
            ("DySeBLWJ6vJiLwLvcVf5Wfj2a2pFqqTDH1xEDMXVCMHx", False, True),  # job
            ("5KporntzQkHiVMKxnFuUGcwPKhtVdhaFkneEkhnoZi1U", False, False),  # market
            ("9edj24heFqJDR9LShNnGteLCwsMNjmWjWuJEV2f9P2ei", False, True),  # payer
        ],
    ),
    MaintenanceInstruction.CLEAN_ADMIN: (
        "f55abc44fdebab69",
        [
            ("DySeBLWJ6vJiLwLvcVf5Wfj2a2pFqqTDH1xEDMXVCMHx", False, True),  # job
            ("9edj24heFqJDR9LShNnGteLCwsMNjmWjWuJEV2f9P2ei", False, True),  # payer
            ("AdmMVMMU3po5BP3bVWsF9GgN6NNEfpfxpTDGTzjgb72S", True, False),  # authority
        ],
    ),
    MaintenanceInstruction.QUIT_ADMIN: (
        "67ee6e08b61438c4",
        [
            ("25iczLYW2S2qo1KbqvFNJbtmc5nqJectwCejxTe3hiXY", False, True),  # run
            ("9edj24heFqJDR9LShNnGteLCwsMNjmWjWuJEV2f9P2ei", False, True),  # payer
            ("AdmMVMMU3po5BP3bVWsF9GgN6NNEfpfxpTDGTzjgb72S", True, False),  # authority
        ],
    ),
    MaintenanceInstruction.CLAIM: (
        "3ec6d6c1d59f6cd2",
        [
            ("DySeBLWJ6vJiLwLvcVf5Wfj2a2pFqqTDH1xEDMXVCMHx", False, True),  # job
            ("25iczLYW2S2qo1KbqvFNJbtmc5nqJectwCejxTe3hiXY", True, True),  # run (new keypair)
            ("5KporntzQkHiVMKxnFuUGcwPKhtVdhaFkneEkhnoZi1U", False, False),  # market
            ("4F85ZySpwyY6FuKqoUgmccbBRAXGrgb8pFyjpd5DcNrA", False, False),  # stake
            ("6QXY9cM9sX3LioL5m38AvdHbEFFiQiZNhKJjgnWPX3An", False, False),  # nft
            ("8ZvzjFFUo4YbBhLKibZaEdz13Kz9xkXcaNdjYwwZRhVQ", False, False),  # metadata
            ("9edj24heFqJDR9LShNnGteLCwsMNjmWjWuJEV2f9P2ei", True, True),  # payer
            ("7VEGSRoKLHnxxFLCjpLsaddo8ncwBjYVdqyEcsDyUNL6", True, False),  # authority
            ("11111111111111111111111111111111", False, False),  # systemProgram
        ],
    ),
}

# The whole clean instruction as solders serialises it (bincode): program id, u64 count,
# each meta as pubkey + signer byte + writable byte, u64 data length, data.
CLEAN_BINCODE = (
    "0bbc2124b9ec83032a445b8f14d3ee932574164105cc24dc0557029af627e8ce"  # program id
    "0300000000000000"  # three accounts
    "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"  # job
    "0001"  # not signer, writable
    "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"  # market
    "0000"  # not signer, read-only
    "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"  # payer
    "0001"  # not signer, writable
    "0800000000000000"  # eight bytes of data
    "fabf388096fb0167"  # sighash("global:clean")
)


def metas(ix: Instruction) -> list[Meta]:
    return [(str(meta.pubkey), meta.is_signer, meta.is_writable) for meta in ix.accounts]


def sighash(snake_name: str) -> bytes:
    return hashlib.sha256(f"global:{snake_name}".encode()).digest()[:8]


# --- golden instructions --------------------------------------------------------------


@pytest.mark.parametrize("kind", list(MaintenanceInstruction))
def test_instruction_golden(kind: MaintenanceInstruction) -> None:
    data_hex, expected_metas = GOLDEN[kind]
    ix = BUILT[kind]
    assert ix.program_id == PROGRAM
    assert bytes(ix.data).hex() == data_hex
    assert metas(ix) == expected_metas


def test_clean_golden_serialised_bytes() -> None:
    assert bytes(CLEAN).hex() == CLEAN_BINCODE
    assert str(PROGRAM) == "nosJhNRqr2bc9g1nfGDcXXTXvYUmxD4cVwy2pMWhrYM"


def test_claim_passes_the_system_program_for_the_run_init() -> None:
    assert CLAIM.accounts[-1].pubkey == SYSTEM_PROGRAM


def test_program_id_is_a_keyword_for_other_clusters() -> None:
    ix = instructions.clean(
        CleanAccounts(job=JOB, market=MARKET, payer=PAYER), program_id=DEVNET.jobs_program
    )
    assert ix.program_id == DEVNET.jobs_program
    assert bytes(ix.data) == bytes(CLEAN.data)


@pytest.mark.parametrize("kind", list(MaintenanceInstruction))
def test_account_flags_match_the_reference_idl(
    kind: MaintenanceInstruction, reference_idl: dict[str, Any]
) -> None:
    (reference,) = (ix for ix in reference_idl["instructions"] if ix["name"] == kind.value)
    expected = [(account["isSigner"], account["isMut"]) for account in reference["accounts"]]
    assert [(signer, writable) for _, signer, writable in metas(BUILT[kind])] == expected


# --- the signing allow-list -------------------------------------------------------------


@pytest.mark.parametrize("kind", list(MaintenanceInstruction))
def test_allowed_accepts_the_four_for_the_configured_program(
    kind: MaintenanceInstruction,
) -> None:
    assert instructions.allowed(BUILT[kind], PROGRAM)
    assert instructions.maintenance_kind(BUILT[kind], PROGRAM) is kind


@pytest.mark.parametrize("kind", list(MaintenanceInstruction))
def test_allowed_rejects_the_four_for_another_program_id(kind: MaintenanceInstruction) -> None:
    assert not instructions.allowed(BUILT[kind], DEVNET.jobs_program)
    assert instructions.maintenance_kind(BUILT[kind], DEVNET.jobs_program) is None


def test_allowed_accepts_compute_unit_limit_and_price() -> None:
    assert instructions.allowed(instructions.compute_unit_limit(200_000), PROGRAM)
    assert instructions.allowed(instructions.compute_unit_price(1_000), PROGRAM)


def test_allowed_rejects_other_compute_budget_instructions() -> None:
    assert not instructions.allowed(request_heap_frame(256 * 1024), PROGRAM)
    data_size_limit = Instruction(
        COMPUTE_BUDGET_PROGRAM, bytes([4]) + (64).to_bytes(4, "little"), []
    )
    assert not instructions.allowed(data_size_limit, PROGRAM)
    assert not instructions.allowed(Instruction(COMPUTE_BUDGET_PROGRAM, b"", []), PROGRAM)


def test_allowed_rejects_malformed_compute_budget_data() -> None:
    limit = bytes(instructions.compute_unit_limit(200_000).data)
    assert not instructions.allowed(
        Instruction(COMPUTE_BUDGET_PROGRAM, limit + b"\x00", []), PROGRAM
    )
    assert not instructions.allowed(Instruction(COMPUTE_BUDGET_PROGRAM, limit[:-1], []), PROGRAM)
    with_account = Instruction(COMPUTE_BUDGET_PROGRAM, limit, [AccountMeta(PAYER, True, True)])
    assert not instructions.allowed(with_account, PROGRAM)


def test_allowed_rejects_a_system_transfer() -> None:
    ix = transfer(TransferParams(from_pubkey=PAYER, to_pubkey=NODE, lamports=1))
    assert not instructions.allowed(ix, PROGRAM)
    assert not instructions.allowed(ix, SYSTEM_PROGRAM)


@pytest.mark.parametrize(
    "name", ["quit", "finish", "recover", "close_admin", "close", "end", "delist", "extend"]
)
@pytest.mark.parametrize("account_count", [3, 9])
def test_allowed_rejects_other_jobs_instructions(name: str, account_count: int) -> None:
    accounts = [AccountMeta(PAYER, False, True)] * account_count
    assert not instructions.allowed(Instruction(PROGRAM, sighash(name), accounts), PROGRAM)


@pytest.mark.parametrize("kind", list(MaintenanceInstruction))
@pytest.mark.parametrize("change", [-1, 1])
def test_allowed_rejects_a_wrong_account_count(kind: MaintenanceInstruction, change: int) -> None:
    ix = BUILT[kind]
    accounts = list(ix.accounts)
    accounts = accounts[:-1] if change < 0 else [*accounts, AccountMeta(PAYER, False, False)]
    assert not instructions.allowed(Instruction(ix.program_id, bytes(ix.data), accounts), PROGRAM)


def flag_flips() -> list[tuple[MaintenanceInstruction, int, str]]:
    return [
        (kind, index, flag)
        for kind in MaintenanceInstruction
        for index in range(len(BUILT[kind].accounts))
        for flag in ("signer", "writable")
    ]


@pytest.mark.parametrize(("kind", "index", "flag"), flag_flips())
def test_allowed_rejects_any_account_flag_flipped(
    kind: MaintenanceInstruction, index: int, flag: str
) -> None:
    """A signer or writable bit the program does not ask for is never signed."""
    ix = BUILT[kind]
    accounts = list(ix.accounts)
    meta = accounts[index]
    accounts[index] = AccountMeta(
        meta.pubkey,
        is_signer=meta.is_signer != (flag == "signer"),
        is_writable=meta.is_writable != (flag == "writable"),
    )
    assert not instructions.allowed(Instruction(ix.program_id, bytes(ix.data), accounts), PROGRAM)


def test_allowed_rejects_a_claim_whose_system_program_is_swapped() -> None:
    ix = BUILT[MaintenanceInstruction.CLAIM]
    accounts = [*ix.accounts[:-1], AccountMeta(PAYER, is_signer=False, is_writable=False)]
    assert not instructions.allowed(Instruction(ix.program_id, bytes(ix.data), accounts), PROGRAM)


@pytest.mark.parametrize("kind", list(MaintenanceInstruction))
def test_allowed_rejects_arguments_after_the_discriminator(kind: MaintenanceInstruction) -> None:
    ix = BUILT[kind]
    padded = Instruction(ix.program_id, bytes(ix.data) + b"\x00", list(ix.accounts))
    assert not instructions.allowed(padded, PROGRAM)


EXPECTED_COUNTS = {
    bytes.fromhex("fabf388096fb0167"): 3,  # clean
    bytes.fromhex("f55abc44fdebab69"): 3,  # cleanAdmin
    bytes.fromhex("67ee6e08b61438c4"): 3,  # quitAdmin
    bytes.fromhex("3ec6d6c1d59f6cd2"): 9,  # claim
}


@given(
    st.binary(max_size=16) | st.sampled_from(sorted(EXPECTED_COUNTS)),
    st.integers(0, 12),
    st.booleans(),
)
def test_random_data_is_allowed_only_as_one_of_the_four(
    data: bytes, account_count: int, builder_flags: bool
) -> None:
    """Allowed only with one of the four discriminators, its account count and the flags
    its builder sets (all-writable, signer-less accounts never fit any of the four)."""
    template = next((ix for ix in BUILT.values() if bytes(ix.data) == data), None)
    filler = [AccountMeta(PAYER, is_signer=False, is_writable=True)] * account_count
    if builder_flags and template is not None:
        accounts = [*template.accounts, *filler][:account_count]
    else:
        accounts = filler
    ix = Instruction(PROGRAM, data, accounts)
    expected = builder_flags and EXPECTED_COUNTS.get(data) == account_count
    assert instructions.allowed(ix, PROGRAM) is expected
