"""SPL Token accounts and mints: the bytes the local chain stores and how spl-token reads them.

``unpack_token_account`` follows spl-token's ``Account::unpack``: exactly 165 bytes, valid
``COption`` tags and state byte (else InvalidAccountData), then initialized (else
UninitializedAccount). Anchor's ``Account<'info, TokenAccount>`` surfaces these errors as
they are, not as an Anchor code.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from solders.pubkey import Pubkey

TOKEN_ACCOUNT_SIZE: Final = 165
MINT_SIZE: Final = 82
ASSOCIATED_TOKEN_PROGRAM: Final = Pubkey.from_string("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL")

_NONE: Final = bytes(4)
_SOME: Final = (1).to_bytes(4, "little")
_U64: Final = struct.Struct("<Q")


class TokenAccountState(IntEnum):
    UNINITIALIZED = 0
    INITIALIZED = 1
    FROZEN = 2


_STATES: Final = frozenset(int(state) for state in TokenAccountState)


class TokenUnpackError(Exception):
    """spl-token refused the bytes; ``name`` is the ProgramError it returns."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


@dataclass(frozen=True, slots=True)
class TokenAccount:
    mint: Pubkey
    owner: Pubkey
    amount: int
    delegate: Pubkey | None = None
    state: int = TokenAccountState.INITIALIZED
    is_native: int | None = None
    delegated_amount: int = 0
    close_authority: Pubkey | None = None


def _coption(tag: bytes) -> bool:
    """True for Some, False for None; anything else is InvalidAccountData."""
    if tag == _NONE:
        return False
    if tag == _SOME:
        return True
    raise TokenUnpackError("InvalidAccountData")


def _optional_key(data: bytes, offset: int) -> Pubkey | None:
    if not _coption(data[offset : offset + 4]):
        return None
    return Pubkey.from_bytes(data[offset + 4 : offset + 36])


def unpack_token_account(data: bytes) -> TokenAccount:
    """spl-token's ``Account::unpack``; raises TokenUnpackError like the program would."""
    if len(data) != TOKEN_ACCOUNT_SIZE:
        raise TokenUnpackError("InvalidAccountData")
    delegate = _optional_key(data, 72)
    if data[108] not in _STATES:
        raise TokenUnpackError("InvalidAccountData")
    is_native = _U64.unpack_from(data, 113)[0] if _coption(data[109:113]) else None
    account = TokenAccount(
        mint=Pubkey.from_bytes(data[0:32]),
        owner=Pubkey.from_bytes(data[32:64]),
        amount=_U64.unpack_from(data, 64)[0],
        delegate=delegate,
        state=data[108],
        is_native=is_native,
        delegated_amount=_U64.unpack_from(data, 121)[0],
        close_authority=_optional_key(data, 129),
    )
    if account.state == TokenAccountState.UNINITIALIZED:
        raise TokenUnpackError("UninitializedAccount")
    return account


def _encode_optional_key(key: Pubkey | None) -> bytes:
    return _NONE + bytes(32) if key is None else _SOME + bytes(key)


def encode_token_account(account: TokenAccount) -> bytes:
    native = _NONE + bytes(8) if account.is_native is None else _SOME + _U64.pack(account.is_native)
    return b"".join(
        (
            bytes(account.mint),
            bytes(account.owner),
            _U64.pack(account.amount),
            _encode_optional_key(account.delegate),
            bytes([account.state]),
            native,
            _U64.pack(account.delegated_amount),
            _encode_optional_key(account.close_authority),
        )
    )


def encode_mint(
    *,
    mint_authority: Pubkey | None,
    supply: int,
    decimals: int = 0,
    freeze_authority: Pubkey | None = None,
) -> bytes:
    """An initialized SPL mint (82 bytes)."""
    return b"".join(
        (
            _encode_optional_key(mint_authority),
            _U64.pack(supply),
            bytes([decimals, 1]),
            _encode_optional_key(freeze_authority),
        )
    )


def associated_token_address(owner: Pubkey, mint: Pubkey, token_program: Pubkey) -> Pubkey:
    """The associated token account of ``owner`` for ``mint``."""
    address, _bump = Pubkey.find_program_address(
        [bytes(owner), bytes(token_program), bytes(mint)], ASSOCIATED_TOKEN_PROGRAM
    )
    return address
