"""Parsing a getProgramAccounts body as it streams, into ``AccountChunk``s.

Two parsers, one contract (``feed`` bytes, ``finish``, chunks out):

- ``LibraryParser``: ijson (yajl2_c), any valid JSON. The reference path.
- ``CompactParser``: the compact shape every node sends (``{"jsonrpc":"2.0","result":[
  {...},{...}],"id":1}``, either key order inside an item). Items of a getProgramAccounts
  result hold only base58, base64, numbers and booleans, never a brace inside a string, so
  ``},{`` marks the end of an item and two regular expressions find every key and data
  blob of a run of whole items at C speed: about 4x ijson, which builds a dict per
  account. A run it cannot account for exactly (a count that does not add up) is parsed
  by the standard library instead; a body of another shape goes to ``LibraryParser``
  whole. tests/chain/test_scan_body.py holds both parsers to the same output.
"""

from __future__ import annotations

import binascii
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

import based58
import ijson
import numpy as np
import numpy.typing as npt
from solders.pubkey import Pubkey

from keeper.chain.rpc import json_rpc_error
from keeper.errors import RpcResponseError
from keeper.program.layouts import PUBKEY_LEN

if TYPE_CHECKING:
    from collections.abc import Iterable

# An error body is small: the first bytes are kept to explain a response with no accounts.
_HEAD_LIMIT: Final = 64 * 1024
# No account this keeper scans comes near this; a body without ``},{`` for this long is
# not compact (pretty-printed, say) and goes to the library parser.
_MAX_ITEM_BYTES: Final = 1024 * 1024
_yajl = ijson.get_backend("yajl2_c")

_SEPARATOR: Final = b"},{"
_MEMBER = rb'\s*"(?:jsonrpc|id)"\s*:\s*(?:"[^"\\{}\[\]]*"|-?\d+|null)\s*'
_RESULT_START: Final = re.compile(rb"\s*\{(?:" + _MEMBER + rb",)*\s*\"result\"\s*:\s*\[")
_RESULT_END: Final = re.compile(rb"\s*\](?:\s*," + _MEMBER + rb")*\s*\}\s*")
_PUBKEY: Final = re.compile(rb'"pubkey"\s*:\s*"([^"]*)"')
_DATA: Final = re.compile(rb'"data"\s*:\s*\[\s*"([^"]*)"\s*,\s*"base64"\s*\]')


@dataclass(frozen=True, slots=True)
class AccountChunk:
    """Up to ``chunk_size`` accounts: ``keys`` is n*32 bytes, ``data`` n*``record_size``."""

    keys: bytes
    data: bytes
    record_size: int
    odd: tuple[tuple[Pubkey, bytes], ...] = ()

    def __len__(self) -> int:
        """Accounts of ``record_size`` bytes (``odd`` ones are not counted here)."""
        return len(self.keys) // PUBKEY_LEN

    def key(self, index: int) -> Pubkey:
        start = index * PUBKEY_LEN
        return Pubkey.from_bytes(self.keys[start : start + PUBKEY_LEN])

    def key_array(self) -> npt.NDArray[np.uint8]:
        """The keys as an (n, 32) uint8 view (no copy)."""
        return np.frombuffer(self.keys, dtype=np.uint8).reshape(-1, PUBKEY_LEN)


class BodyParser(Protocol):
    @property
    def accounts(self) -> int: ...

    def feed(self, raw: bytes) -> list[AccountChunk]: ...

    def finish(self) -> list[AccountChunk]: ...


class ChunkBuilder:
    """Packs (key, data) pairs into chunks; holds at most one chunk's worth."""

    def __init__(self, where: str, record_size: int, chunk_size: int) -> None:
        self._where = where
        self._record_size = record_size
        self._chunk_size = chunk_size
        self._keys = bytearray()
        self._data = bytearray()
        self._odd: list[tuple[Pubkey, bytes]] = []
        self._count = 0
        self.accounts = 0

    def add(self, key: bytes, blob: bytes) -> AccountChunk | None:
        if len(key) != PUBKEY_LEN:
            raise RpcResponseError(f"{self._where}: an account key of {len(key)} bytes")
        if len(blob) == self._record_size:
            self._keys += key
            self._data += blob
        else:
            self._odd.append((Pubkey.from_bytes(key), blob))
        self._count += 1
        self.accounts += 1
        return self.flush() if self._count >= self._chunk_size else None

    def add_all(self, pairs: Iterable[tuple[bytes, bytes]]) -> list[AccountChunk]:
        chunks = []
        for key, blob in pairs:
            chunk = self.add(key, blob)
            if chunk is not None:
                chunks.append(chunk)
        return chunks

    def rest(self) -> list[AccountChunk]:
        """The last, partly filled chunk, if any (at the end of a body)."""
        last = self.flush()
        return [] if last is None else [last]

    def flush(self) -> AccountChunk | None:
        if not self._count:
            return None
        chunk = AccountChunk(
            bytes(self._keys), bytes(self._data), self._record_size, tuple(self._odd)
        )
        self._keys.clear()
        self._data.clear()
        self._odd.clear()
        self._count = 0
        return chunk


def _decode_entry(where: str, entry: Any) -> tuple[bytes, bytes]:  # noqa: ANN401 - JSON
    """(key, account data) of one ``{"pubkey", "account": {"data": [b64, enc]}}``."""
    try:
        key = based58.b58decode(entry["pubkey"].encode())
        encoded, encoding = entry["account"]["data"]
        blob = binascii.a2b_base64(encoded)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise RpcResponseError(f"{where}: malformed account entry ({error})") from error
    if encoding != "base64":
        raise RpcResponseError(f"{where}: data in {encoding!r}, asked for base64")
    return key, blob


def _check_empty_body(where: str, head: bytes, size: int) -> None:
    """No accounts: an empty result, or an error object (which is never large)."""
    if size > _HEAD_LIMIT:
        raise RpcResponseError(f"{where}: {size} bytes and no result array")
    try:
        payload = json.loads(head)
    except ValueError as error:
        raise RpcResponseError(f"{where}: the body is not valid JSON") from error
    if isinstance(payload, dict) and payload.get("error") is not None:
        raise json_rpc_error(where, payload["error"])
    if not isinstance(payload, dict) or not isinstance(payload.get("result"), list):
        raise RpcResponseError(f"{where}: a response without a result array")


class LibraryParser:
    """Any valid JSON body, through ijson's incremental parser."""

    def __init__(self, where: str, builder: ChunkBuilder) -> None:
        self._where = where
        self._entries = ijson.sendable_list()
        self._parser = _yajl.items_coro(self._entries, "result.item")
        self._builder = builder
        self._head = bytearray()
        self._size = 0

    @property
    def accounts(self) -> int:
        return self._builder.accounts

    def feed(self, raw: bytes) -> list[AccountChunk]:
        if self._size < _HEAD_LIMIT:
            self._head += raw[: _HEAD_LIMIT - self._size]
        self._size += len(raw)
        try:
            self._parser.send(raw)
        except ijson.JSONError as error:
            raise RpcResponseError(f"{self._where}: the body is not valid JSON") from error
        return self._drain()

    def finish(self) -> list[AccountChunk]:
        try:
            self._parser.close()
        except ijson.JSONError as error:
            raise RpcResponseError(f"{self._where}: the body ended early") from error
        chunks = self._drain() + self._builder.rest()
        if not self.accounts:
            _check_empty_body(self._where, bytes(self._head), self._size)
        return chunks

    def _drain(self) -> list[AccountChunk]:
        pairs = [_decode_entry(self._where, entry) for entry in self._entries]
        self._entries.clear()
        return self._builder.add_all(pairs)


class CompactParser:
    """The compact body every node sends, at C speed; anything else to ``LibraryParser``."""

    def __init__(self, where: str, builder: ChunkBuilder) -> None:
        self._where = where
        self._builder = builder
        self._buffer = bytearray()
        self._in_result = False
        self._library: LibraryParser | None = None

    @property
    def accounts(self) -> int:
        return self._builder.accounts

    def feed(self, raw: bytes) -> list[AccountChunk]:
        if self._library is not None:
            return self._library.feed(raw)
        self._buffer += raw
        if not self._in_result:
            found = _RESULT_START.match(self._buffer)
            if found is None:
                return [] if self._head_may_match() else self._to_library(b"")
            del self._buffer[: found.end()]
            self._in_result = True
        cut = self._buffer.rfind(_SEPARATOR)
        if cut < 0:
            if len(self._buffer) > _MAX_ITEM_BYTES:
                return self._to_library(b'{"result":[')
            return []
        whole = bytes(self._buffer[: cut + 1])
        del self._buffer[: cut + 2]
        return self._items(whole)

    def finish(self) -> list[AccountChunk]:
        handed: list[AccountChunk] = []
        if self._library is None and not self._in_result:
            handed = self._to_library(b"")  # a body whose head never took the compact shape
        if self._library is not None:
            return handed + self._library.finish()
        rest = bytes(self._buffer)
        self._buffer.clear()
        end = _result_end(rest)
        if end is None:
            raise RpcResponseError(f"{self._where}: the body ended early")
        chunks = self._items(rest[:end]) if rest[:end].strip() else []
        return chunks + self._builder.rest()

    def _head_may_match(self) -> bool:
        """Could more bytes still make the head ``{"jsonrpc":"2.0","result":[``?"""
        complete = b"[" in self._buffer or self._buffer.count(b"{") > 1
        return not complete and len(self._buffer) <= _HEAD_LIMIT

    def _to_library(self, prefix: bytes) -> list[AccountChunk]:
        """The rest of the body to ijson; ``prefix`` restores the head already consumed."""
        self._library = LibraryParser(self._where, self._builder)
        body = prefix + self._buffer
        self._buffer.clear()
        return self._library.feed(bytes(body))

    def _items(self, whole: bytes) -> list[AccountChunk]:
        """``whole``: one or more complete items joined by ``,`` (no outer brackets)."""
        keys = _PUBKEY.findall(whole)
        blobs = _DATA.findall(whole)
        # Each item is two objects (itself and its account): braces that balance at two per
        # key and blob mean whole items; anything else gets the exact, slower reading.
        braces = whole.count(b"{")
        if not (braces == whole.count(b"}") == 2 * len(keys) == 2 * len(blobs)):
            return self._items_by_stdlib(whole)
        try:
            pairs = [
                (based58.b58decode(key), binascii.a2b_base64(blob))
                for key, blob in zip(keys, blobs, strict=True)
            ]
        except ValueError as error:
            raise RpcResponseError(f"{self._where}: malformed account entry ({error})") from error
        return self._builder.add_all(pairs)

    def _items_by_stdlib(self, whole: bytes) -> list[AccountChunk]:
        try:
            entries = json.loads(b"[" + whole + b"]")
        except ValueError as error:
            raise RpcResponseError(f"{self._where}: the body is not valid JSON") from error
        return self._builder.add_all(_decode_entry(self._where, entry) for entry in entries)


def _result_end(rest: bytes) -> int | None:
    """Where the result array's items end in the body's last bytes (None: cut short)."""
    close = rest.rfind(b"]")
    while close >= 0:
        if _RESULT_END.fullmatch(rest, close):
            return close
        close = rest.rfind(b"]", 0, close)
    return None


def body_parser(
    where: str, record_size: int, chunk_size: int, *, compact: bool = True
) -> BodyParser:
    """A parser for one body: the compact fast path (default) or the library path."""
    builder = ChunkBuilder(where, record_size, chunk_size)
    return CompactParser(where, builder) if compact else LibraryParser(where, builder)
