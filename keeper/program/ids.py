"""Addresses of the Nosana programs and the Solana programs they use, per cluster."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from solders.pubkey import Pubkey


class Cluster(StrEnum):
    MAINNET = "mainnet"
    DEVNET = "devnet"
    LOCALNET = "localnet"


@dataclass(frozen=True, slots=True)
class ClusterAddresses:
    jobs_program: Pubkey
    market_admin: Pubkey
    nos_mint: Pubkey


MAINNET = ClusterAddresses(
    jobs_program=Pubkey.from_string("nosJhNRqr2bc9g1nfGDcXXTXvYUmxD4cVwy2pMWhrYM"),
    market_admin=Pubkey.from_string("AdmMVMMU3po5BP3bVWsF9GgN6NNEfpfxpTDGTzjgb72S"),
    nos_mint=Pubkey.from_string("nosXBVoaCTtYdLvKY6Csb4AC8JCdQKKAaWYtx2ZMoo7"),
)
# Devnet and every non-mainnet build of the program share these.
DEVNET = ClusterAddresses(
    jobs_program=Pubkey.from_string("nosJTmGQxvwXy23vng5UjkTbfv91Bzf9jEuro78dAGR"),
    market_admin=Pubkey.from_string("XXXxddiNnmoD2h2LbQYaL76Swi21MaQbtBbRynAdQL8"),
    nos_mint=Pubkey.from_string("devr1BGQndEW5k5zfvG5FsLyZv1Ap73vNgAHcQ9sUVP"),
)

STAKING_PROGRAM = Pubkey.from_string("nosScmHY2uR24Zh751PmGj9ww9QRNHewh9H59AfrTJE")
METAPLEX_METADATA_PROGRAM = Pubkey.from_string("metaqbxxUerdq28cj1RbAWkYQm3ybzjb6a8bt518x1s")
SYSTEM_PROGRAM = Pubkey.from_string("11111111111111111111111111111111")
COMPUTE_BUDGET_PROGRAM = Pubkey.from_string("ComputeBudget111111111111111111111111111111")
TOKEN_PROGRAM = Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
CLOCK_SYSVAR = Pubkey.from_string("SysvarC1ock11111111111111111111111111111111")
