"""The claim identity derives the node's stake and the NFT's metadata PDAs."""

from __future__ import annotations

from task_factories import NODE, key

from keeper.program import pda
from keeper.program.ids import MAINNET
from keeper.tasks.identity import ClaimIdentity


def test_derive() -> None:
    identity = ClaimIdentity.derive(
        authority=NODE, nft=key("nft"), nft_mint=key("mint"), nos_mint=MAINNET.nos_mint
    )
    assert identity.authority == NODE
    assert identity.nft == key("nft")
    assert identity.stake == pda.node_stake(NODE, MAINNET.nos_mint)
    assert identity.metadata == pda.nft_metadata(key("mint"))
