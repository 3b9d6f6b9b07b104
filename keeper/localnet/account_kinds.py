"""The Anchor account types the maintenance instructions load, and how many bytes Borsh reads.

Borsh reads exactly the struct's content, so an account shorter than that cannot be
loaded (AccountDidNotDeserialize) — which is why a legacy 232-byte JobAccount, one byte
short of the current 233-byte content, fails every instruction. Longer is fine: the
allocated padding is never read.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from keeper.localnet.anchor_checks import AnchorAccount
from keeper.program.ids import STAKING_PROGRAM
from keeper.program.layouts import (
    JOB_CONTENT_SIZE,
    JOB_DISCRIMINATOR,
    MARKET_DISCRIMINATOR,
    MARKET_HEADER_SIZE,
    PUBKEY_LEN,
    RUN_CONTENT_SIZE,
    RUN_DISCRIMINATOR,
    STAKE_CONTENT_SIZE,
    STAKE_DISCRIMINATOR,
    MarketOffset,
)

if TYPE_CHECKING:
    from solders.pubkey import Pubkey

_U32: Final = struct.Struct("<I")


def market_borsh_len(data: bytes) -> int | None:
    """A MarketAccount's Borsh content: the header plus ``queue length`` keys."""
    if len(data) < MARKET_HEADER_SIZE:
        return None
    queue_len: int = _U32.unpack_from(data, MarketOffset.QUEUE_LEN)[0]
    return MARKET_HEADER_SIZE + queue_len * PUBKEY_LEN


@dataclass(frozen=True, slots=True)
class AccountKinds:
    job: AnchorAccount
    run: AnchorAccount
    market: AnchorAccount
    stake: AnchorAccount


def account_kinds(program_id: Pubkey) -> AccountKinds:
    """The jobs program's accounts (owned by ``program_id``) and the staking program's stake."""
    return AccountKinds(
        job=AnchorAccount(program_id, JOB_DISCRIMINATOR, lambda _data: JOB_CONTENT_SIZE),
        run=AnchorAccount(program_id, RUN_DISCRIMINATOR, lambda _data: RUN_CONTENT_SIZE),
        market=AnchorAccount(program_id, MARKET_DISCRIMINATOR, market_borsh_len),
        stake=AnchorAccount(STAKING_PROGRAM, STAKE_DISCRIMINATOR, lambda _data: STAKE_CONTENT_SIZE),
    )
