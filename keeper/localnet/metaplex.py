"""Metaplex ``MetadataV1`` accounts: the bytes the local chain stores, and how they are read.

``read_metadata`` follows mpl-token-metadata's ``Metadata::safe_deserialize`` (the Rust
client the jobs program uses): the key byte must be 4 (MetadataV1); every field up to
``edition_nonce`` must parse; ``token_standard``, ``collection`` and ``uses`` are read
leniently — if any of the three fails, all three are None. Borsh is strict: Option tags
and bools are 0 or 1, strings are UTF-8, enums have their listed variants only.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from solders.pubkey import Pubkey

METADATA_V1_KEY: Final = 4
MAX_METADATA_LEN: Final = 679  # the size Metaplex allocates
MAX_NAME_LENGTH: Final = 32
MAX_SYMBOL_LENGTH: Final = 10
MAX_URI_LENGTH: Final = 200
_TOKEN_STANDARDS: Final = 6  # NonFungible .. ProgrammableNonFungibleEdition
_USE_METHODS: Final = 3  # Burn, Multiple, Single
_U16: Final = struct.Struct("<H")
_U32: Final = struct.Struct("<I")


class BorshError(Exception):
    """The bytes are not a valid Borsh encoding of the expected type."""


@dataclass(frozen=True, slots=True)
class Creator:
    address: Pubkey
    verified: bool
    share: int


@dataclass(frozen=True, slots=True)
class Collection:
    verified: bool
    key: Pubkey


@dataclass(frozen=True, slots=True)
class Metadata:
    update_authority: Pubkey
    mint: Pubkey
    name: str = ""
    symbol: str = ""
    uri: str = ""
    seller_fee_basis_points: int = 0
    creators: tuple[Creator, ...] | None = None
    primary_sale_happened: bool = False
    is_mutable: bool = True
    edition_nonce: int | None = None
    token_standard: int | None = None
    collection: Collection | None = None


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def take(self, size: int) -> bytes:
        end = self.offset + size
        if end > len(self.data):
            raise BorshError("unexpected end of data")
        chunk = self.data[self.offset : end]
        self.offset = end
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def flag(self) -> bool:
        """A Borsh bool or Option tag: 0 or 1, nothing else."""
        value = self.u8()
        if value > 1:
            raise BorshError(f"invalid bool/option tag {value}")
        return value == 1

    def pubkey(self) -> Pubkey:
        return Pubkey.from_bytes(self.take(32))

    def string(self) -> str:
        (length,) = _U32.unpack(self.take(4))
        try:
            return self.take(length).decode("utf-8")
        except UnicodeDecodeError as error:
            raise BorshError("string is not UTF-8") from error

    def enum(self, variants: int) -> int:
        value = self.u8()
        if value >= variants:
            raise BorshError(f"invalid enum variant {value}")
        return value


def _creators(reader: _Reader) -> tuple[Creator, ...] | None:
    if not reader.flag():
        return None
    (count,) = _U32.unpack(reader.take(4))
    return tuple(
        Creator(address=reader.pubkey(), verified=reader.flag(), share=reader.u8())
        for _ in range(count)
    )


def _lenient_tail(reader: _Reader) -> tuple[int | None, Collection | None]:
    """token_standard, collection (and uses, discarded): all None if any fails to parse."""
    try:
        token_standard = reader.enum(_TOKEN_STANDARDS) if reader.flag() else None
        collection = Collection(reader.flag(), reader.pubkey()) if reader.flag() else None
        if reader.flag():  # uses: use_method, remaining u64, total u64
            reader.enum(_USE_METHODS)
            reader.take(16)
    except BorshError:
        return None, None
    return token_standard, collection


def read_metadata(data: bytes) -> Metadata:
    """``Metadata::safe_deserialize``; raises BorshError where it returns an error."""
    if not data or data[0] != METADATA_V1_KEY:
        raise BorshError("DataTypeMismatch")
    reader = _Reader(data)
    reader.u8()
    update_authority, mint = reader.pubkey(), reader.pubkey()
    name, symbol, uri = reader.string(), reader.string(), reader.string()
    (seller_fee,) = _U16.unpack(reader.take(2))
    creators = _creators(reader)
    primary_sale_happened, is_mutable = reader.flag(), reader.flag()
    edition_nonce = reader.u8() if reader.flag() else None
    token_standard, collection = _lenient_tail(reader)
    return Metadata(
        update_authority=update_authority,
        mint=mint,
        name=name,
        symbol=symbol,
        uri=uri,
        seller_fee_basis_points=seller_fee,
        creators=creators,
        primary_sale_happened=primary_sale_happened,
        is_mutable=is_mutable,
        edition_nonce=edition_nonce,
        token_standard=token_standard,
        collection=collection,
    )


def has_verified_collection(data: bytes, collection_key: Pubkey) -> bool:
    """The jobs program's test: the metadata parses and names ``collection_key``, verified."""
    try:
        metadata = read_metadata(data)
    except BorshError:
        return False
    collection = metadata.collection
    return collection is not None and collection.verified and collection.key == collection_key


def _string(value: str, padded_to: int) -> bytes:
    # Metaplex pads name, symbol and uri with NULs to their maximum lengths.
    raw = value.encode("utf-8").ljust(padded_to, b"\0")
    return _U32.pack(len(raw)) + raw


def _option(payload: bytes | None) -> bytes:
    return b"\0" if payload is None else b"\1" + payload


def encode_metadata(metadata: Metadata) -> bytes:
    """Serialize ``metadata`` the way Metaplex stores it (679 bytes, zero padded)."""
    creators = None
    if metadata.creators is not None:
        creators = _U32.pack(len(metadata.creators)) + b"".join(
            bytes(c.address) + bytes([c.verified, c.share]) for c in metadata.creators
        )
    collection = metadata.collection
    content = b"".join(
        (
            bytes([METADATA_V1_KEY]),
            bytes(metadata.update_authority),
            bytes(metadata.mint),
            _string(metadata.name, MAX_NAME_LENGTH),
            _string(metadata.symbol, MAX_SYMBOL_LENGTH),
            _string(metadata.uri, MAX_URI_LENGTH),
            _U16.pack(metadata.seller_fee_basis_points),
            _option(creators),
            bytes([metadata.primary_sale_happened, metadata.is_mutable]),
            _option(None if metadata.edition_nonce is None else bytes([metadata.edition_nonce])),
            _option(None if metadata.token_standard is None else bytes([metadata.token_standard])),
            _option(
                None if collection is None else bytes([collection.verified]) + bytes(collection.key)
            ),
            _option(None),  # uses
        )
    )
    return content.ljust(MAX_METADATA_LEN, b"\0")
