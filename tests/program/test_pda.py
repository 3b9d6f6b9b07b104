"""The node stake and NFT metadata PDAs, from the seeds on the facts page.

Expected addresses are derived twice, independently of ``keeper.program.pda``: with
solders' ``find_program_address`` and with a few lines of pure Python (sha256 and the
ed25519 on-curve test), then one of each is pinned as a literal.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from solders.pubkey import Pubkey

from keeper.program import pda
from keeper.program.ids import DEVNET, MAINNET, METAPLEX_METADATA_PROGRAM, STAKING_PROGRAM

NODE = Pubkey.from_string("7VEGSRoKLHnxxFLCjpLsaddo8ncwBjYVdqyEcsDyUNL6")

# Pinned once (solders and the pure-Python derivation below agree on them).
NODE_STAKE_MAINNET = Pubkey.from_string("55eKEbihNTmJ6k72dT4iZfXSbB5VQCjyVjzK2oZsJBVz")
NODE_STAKE_DEVNET = Pubkey.from_string("2hTfc5nVpF5vnuDXAucW1jkXioTNcfKx9Tx5MdQgg65L")
NOS_MINT_METADATA = Pubkey.from_string("HHB4raJv775rYfk4cBZ433GQNidu8Pjp2skGj8hwDXXs")

FIELD = 2**255 - 19
EDWARDS_D = -121665 * pow(121666, -1, FIELD) % FIELD


def on_curve(candidate: bytes) -> bool:
    """Whether 32 bytes decompress to an ed25519 point (as curve25519-dalek decides)."""
    y = int.from_bytes(candidate, "little") & (2**255 - 1)
    y_squared = y * y % FIELD
    x_squared = (y_squared - 1) * pow(EDWARDS_D * y_squared + 1, -1, FIELD) % FIELD
    return x_squared == 0 or pow(x_squared, (FIELD - 1) // 2, FIELD) == 1


def derive(seeds: list[bytes], program: Pubkey) -> Pubkey:
    """find_program_address: the first bump from 255 down whose hash is off the curve."""
    for bump in range(255, -1, -1):
        digest = hashlib.sha256(
            b"".join(seeds) + bytes([bump]) + bytes(program) + b"ProgramDerivedAddress"
        ).digest()
        if not on_curve(digest):
            return Pubkey.from_bytes(digest)
    raise AssertionError("no bump gives an address off the curve")


def test_on_curve_recognises_real_public_keys() -> None:
    # A real wallet key is a curve point; a PDA is not.
    assert on_curve(bytes(MAINNET.market_admin))
    assert not on_curve(bytes(NODE_STAKE_MAINNET))


@pytest.mark.parametrize(
    ("mint", "expected"),
    [(MAINNET.nos_mint, NODE_STAKE_MAINNET), (DEVNET.nos_mint, NODE_STAKE_DEVNET)],
)
def test_node_stake_pda_pinned(mint: Pubkey, expected: Pubkey) -> None:
    assert pda.node_stake(NODE, mint) == expected
    seeds = [b"stake", bytes(mint), bytes(NODE)]
    assert Pubkey.find_program_address(seeds, STAKING_PROGRAM)[0] == expected
    assert derive(seeds, STAKING_PROGRAM) == expected


def test_nft_metadata_pda_pinned() -> None:
    assert pda.nft_metadata(MAINNET.nos_mint) == NOS_MINT_METADATA
    seeds = [b"metadata", bytes(METAPLEX_METADATA_PROGRAM), bytes(MAINNET.nos_mint)]
    assert derive(seeds, METAPLEX_METADATA_PROGRAM) == NOS_MINT_METADATA


def test_stake_seed_order_matters() -> None:
    # [stake, mint, authority], not [stake, authority, mint].
    swapped = derive([b"stake", bytes(NODE), bytes(MAINNET.nos_mint)], STAKING_PROGRAM)
    assert pda.node_stake(NODE, MAINNET.nos_mint) != swapped


@given(st.binary(min_size=32, max_size=32).map(Pubkey.from_bytes))
def test_node_stake_matches_the_facts_page_seeds(authority: Pubkey) -> None:
    expected, _ = Pubkey.find_program_address(
        [b"stake", bytes(MAINNET.nos_mint), bytes(authority)], STAKING_PROGRAM
    )
    assert pda.node_stake(authority, MAINNET.nos_mint) == expected


@given(st.binary(min_size=32, max_size=32).map(Pubkey.from_bytes))
def test_nft_metadata_matches_the_facts_page_seeds(mint: Pubkey) -> None:
    expected, _ = Pubkey.find_program_address(
        [b"metadata", bytes(METAPLEX_METADATA_PROGRAM), bytes(mint)], METAPLEX_METADATA_PROGRAM
    )
    assert pda.nft_metadata(mint) == expected
