"""Solana's transaction limits and fee arithmetic: one place for the protocol's numbers.

Packing (tasks) and sending (chain) both read these, so a batch the packer deems to fit is
one the sender accepts, and the fee both compute is the same number.
"""

from __future__ import annotations

from typing import Final, Literal

MAX_TRANSACTION_BYTES: Final = 1_232
MAX_COMPUTE_UNITS: Final = 1_400_000
LAMPORTS_PER_SIGNATURE: Final = 5_000
MICRO_LAMPORTS_PER_LAMPORT: Final = 1_000_000

TxVersion = Literal["legacy", "v0"]


def fee_lamports(signatures: int, unit_price: int, unit_limit: int) -> int:
    """5,000 lamports per signature plus the priority fee ``ceil(price x limit / 1e6)``.

    Integer ceiling: exact for any size, as the runtime computes it.
    """
    priority = -(-unit_price * unit_limit // MICRO_LAMPORTS_PER_LAMPORT)
    return LAMPORTS_PER_SIGNATURE * signatures + priority
