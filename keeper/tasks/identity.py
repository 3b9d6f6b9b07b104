"""The node identity a keeper claims Stopped jobs as: the accounts every ``claim`` names."""

from __future__ import annotations

from dataclasses import dataclass

from solders.pubkey import Pubkey

from keeper.program.pda import nft_metadata, node_stake


@dataclass(frozen=True, slots=True)
class ClaimIdentity:
    """``authority`` signs each claim and becomes the run's node.

    ``stake`` is its stake PDA, ``nft`` its NFT token account (always required, even in open
    markets), ``metadata`` the metadata PDA of that NFT's mint.
    """

    authority: Pubkey
    stake: Pubkey
    nft: Pubkey
    metadata: Pubkey

    @classmethod
    def derive(
        cls, *, authority: Pubkey, nft: Pubkey, nft_mint: Pubkey, nos_mint: Pubkey
    ) -> ClaimIdentity:
        """The identity of ``authority``; ``nft_mint`` is read (chain layer) from ``nft``."""
        return cls(
            authority=authority,
            stake=node_stake(authority, nos_mint),
            nft=nft,
            metadata=nft_metadata(nft_mint),
        )
