"""Program-derived addresses the maintenance instructions need."""

from __future__ import annotations

from solders.pubkey import Pubkey

from keeper.program.ids import METAPLEX_METADATA_PROGRAM, STAKING_PROGRAM


def node_stake(authority: Pubkey, nos_mint: Pubkey) -> Pubkey:
    """The staking PDA ``[b"stake", NOS_MINT, authority]`` of a node."""
    address, _bump = Pubkey.find_program_address(
        [b"stake", bytes(nos_mint), bytes(authority)], STAKING_PROGRAM
    )
    return address


def nft_metadata(mint: Pubkey) -> Pubkey:
    """The Metaplex metadata PDA ``[b"metadata", METAPLEX, mint]`` of an NFT mint."""
    address, _bump = Pubkey.find_program_address(
        [b"metadata", bytes(METAPLEX_METADATA_PROGRAM), bytes(mint)], METAPLEX_METADATA_PROGRAM
    )
    return address
