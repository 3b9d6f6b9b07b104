"""JSON-RPC errors and the parsing of Solana RPC method parameters."""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Final, TypeVar

import based58
from solders.hash import Hash
from solders.pubkey import Pubkey
from solders.signature import Signature

from keeper.localnet.account_store import DataSlice, Memcmp

if TYPE_CHECKING:
    from collections.abc import Callable

PARSE_ERROR: Final = -32700
INVALID_REQUEST: Final = -32600
METHOD_NOT_FOUND: Final = -32601
INVALID_PARAMS: Final = -32602
INTERNAL_ERROR: Final = -32603
# Solana's server errors.
SEND_TRANSACTION_PREFLIGHT_FAILURE: Final = -32002
TRANSACTION_SIGNATURE_VERIFICATION_FAILURE: Final = -32003
BLOCK_NOT_AVAILABLE: Final = -32004
UNSUPPORTED_TRANSACTION_VERSION: Final = -32015

_T = TypeVar("_T")
MAX_MEMCMP_BYTES: Final = 128
MAX_FILTERS: Final = 4


class RpcMethodError(Exception):
    """An error answer: ``{"code", "message", "data"?}``."""

    def __init__(self, code: int, message: str, data: object = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, object]:
        error: dict[str, object] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


def invalid_params(message: str) -> RpcMethodError:
    return RpcMethodError(INVALID_PARAMS, message)


def _parsed(text: object, parse: Callable[[str], _T], what: str) -> _T:
    if not isinstance(text, str):
        raise invalid_params(f"Invalid param: {what} must be a string")
    try:
        return parse(text)
    except ValueError as error:
        raise invalid_params(f"Invalid param: {error}") from error


def pubkey(value: object) -> Pubkey:
    return _parsed(value, Pubkey.from_string, "pubkey")


def signature(value: object) -> Signature:
    return _parsed(value, Signature.from_string, "signature")


def blockhash(value: object) -> Hash:
    return _parsed(value, Hash.from_string, "blockhash")


class Params:
    """Positional parameters of one call, with typed accessors that answer -32602."""

    def __init__(self, raw: object) -> None:
        if raw is None:
            raw = []
        if not isinstance(raw, list):
            raise invalid_params("Invalid params: expected an array of parameters")
        self._raw: list[object] = raw

    def __len__(self) -> int:
        return len(self._raw)

    def required(self, index: int, what: str) -> object:
        if index >= len(self._raw):
            raise invalid_params(f"Invalid params: missing parameter {index} ({what})")
        return self._raw[index]

    def integer(self, index: int, what: str) -> int:
        value = self.required(index, what)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise invalid_params(f"Invalid params: {what} must be a non-negative integer")
        return value

    def string(self, index: int, what: str) -> str:
        value = self.required(index, what)
        if not isinstance(value, str):
            raise invalid_params(f"Invalid params: {what} must be a string")
        return value

    def array(self, index: int, what: str, *, max_items: int) -> list[object]:
        value = self.required(index, what)
        if not isinstance(value, list):
            raise invalid_params(f"Invalid params: {what} must be an array")
        if len(value) > max_items:
            raise invalid_params(f"Too many inputs provided; max {max_items}")
        return value

    def config(self, index: int) -> Config:
        value = self._raw[index] if index < len(self._raw) else None
        if value is None:
            return Config({})
        if not isinstance(value, dict):
            raise invalid_params(f"Invalid params: parameter {index} must be a config object")
        return Config(value)


class Config:
    """A method's configuration object; absent and null fields take their defaults."""

    def __init__(self, raw: dict[str, object]) -> None:
        self._raw = raw

    def as_dict(self) -> dict[str, object]:
        return dict(self._raw)

    def get(self, name: str) -> object:
        return self._raw.get(name)

    def flag(self, name: str, *, default: bool = False) -> bool:
        value = self._raw.get(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise invalid_params(f"Invalid params: {name} must be a boolean")
        return value

    def choice(self, name: str, allowed: tuple[str, ...], default: str) -> str:
        value = self._raw.get(name)
        if value is None:
            return default
        if value not in allowed:
            raise invalid_params(f"Invalid params: unsupported {name} {value!r}")
        return str(value)

    def data_slice(self) -> DataSlice | None:
        value = self._raw.get("dataSlice")
        if value is None:
            return None
        if not isinstance(value, dict):
            raise invalid_params("Invalid params: dataSlice must be {offset, length}")
        offset, length = value.get("offset"), value.get("length")
        if not _is_count(offset) or not _is_count(length):
            raise invalid_params("Invalid params: dataSlice offset and length must be integers")
        return DataSlice(offset, length)  # type: ignore[arg-type]

    def filters(self) -> tuple[int | None, tuple[Memcmp, ...]]:
        """getProgramAccounts filters: (dataSize or None, memcmps)."""
        raw = self._raw.get("filters") or []
        if not isinstance(raw, list):
            raise invalid_params("Invalid params: filters must be an array")
        if len(raw) > MAX_FILTERS:
            raise invalid_params(f"Too many filters provided; max {MAX_FILTERS}")
        data_size: int | None = None
        memcmps: list[Memcmp] = []
        for item in raw:
            if isinstance(item, dict) and "dataSize" in item and _is_count(item["dataSize"]):
                if data_size is not None and data_size != item["dataSize"]:
                    return -1, ()  # two different sizes: nothing can match
                data_size = item["dataSize"]
            elif isinstance(item, dict) and isinstance(item.get("memcmp"), dict):
                memcmps.append(_memcmp(item["memcmp"]))
            else:
                raise invalid_params(f"Invalid params: unsupported filter {item!r}")
        return data_size, tuple(memcmps)


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _memcmp(raw: dict[str, object]) -> Memcmp:
    offset, text, encoding = raw.get("offset"), raw.get("bytes"), raw.get("encoding")
    if not _is_count(offset) or not isinstance(text, str):
        raise invalid_params("Invalid params: memcmp needs an integer offset and string bytes")
    try:
        if encoding in (None, "base58"):
            value = based58.b58decode(text.encode())
        elif encoding == "base64":
            value = base64.b64decode(text, validate=True)
        else:
            raise invalid_params(f"Invalid params: unsupported memcmp encoding {encoding!r}")
    except (ValueError, binascii.Error) as error:
        raise invalid_params(f"Invalid param: invalid memcmp bytes: {error}") from error
    if len(value) > MAX_MEMCMP_BYTES:
        raise invalid_params(f"Invalid params: memcmp bytes exceed {MAX_MEMCMP_BYTES} bytes")
    return Memcmp(offset, value)  # type: ignore[arg-type]
