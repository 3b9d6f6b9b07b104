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

Both read one of two envelopes (a ``Frame``): getProgramAccounts' (``result`` is the array)
and getProgramAccountsV2's (``result`` is ``{"context", "accounts": [...],
"paginationKey"}``); a V2 page's ``paginationKey`` and context slot land in ``values``.
Several bodies (the pages of one scan) may share one ``ChunkBuilder``: ``end`` leaves its
last partial chunk for the next body, so keys stay de-duplicated across the pages.
"""

from __future__ import annotations

import binascii
import itertools
import json
import re
from array import array
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

import based58
import ijson
import numpy as np
import numpy.typing as npt
from solders.pubkey import Pubkey

from keeper.chain.rpc import json_rpc_error
from keeper.chain.seen import SeenKeys
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
# A V2 page: ``"result":{"context":{...},"accounts":[`` ... ``],"paginationKey":...}``.
_V2_VALUE = rb'(?:null|"[^"\\]*"|\{[^{}]*\})'
_V2_START: Final = re.compile(
    rb"\s*\{(?:" + _MEMBER + rb",)*\s*\"result\"\s*:\s*\{"
    rb'(?P<members>(?:\s*"context"\s*:\s*\{[^{}]*\}\s*,)?)\s*"accounts"\s*:\s*\['
)
_V2_END: Final = re.compile(
    rb'\s*\](?P<members>(?:\s*,\s*"(?:paginationKey|context)"\s*:\s*' + _V2_VALUE + rb")*)"
    rb"\s*\}(?:\s*," + _MEMBER + rb")*\s*\}\s*"
)
_PUBKEY: Final = re.compile(rb'"pubkey"\s*:\s*"([^"]*)"')
_DATA: Final = re.compile(rb'"data"\s*:\s*\[\s*"([^"]*)"\s*,\s*"base64"\s*\]')
_SPACE: Final = re.compile(rb'"space"\s*:\s*(\d+)')


@dataclass(frozen=True, slots=True)
class AccountChunk:
    """Up to ``chunk_size`` accounts: ``keys`` is n*32 bytes, ``data`` n*``record_size``.

    ``spaces``: each account's allocated size (n little-endian u32: the answer's
    ``space``, which tells a legacy layout apart when ``dataSlice`` hides the length), or
    None when the node did not say. ``duplicates``: entries dropped because the answer had
    already given their key.
    """

    keys: bytes
    data: bytes
    record_size: int
    odd: tuple[tuple[Pubkey, bytes], ...] = ()
    spaces: bytes | None = None
    duplicates: int = 0

    def __len__(self) -> int:
        """Accounts of ``record_size`` bytes (``odd`` ones are not counted here)."""
        return len(self.keys) // PUBKEY_LEN

    def key(self, index: int) -> Pubkey:
        start = index * PUBKEY_LEN
        return Pubkey.from_bytes(self.keys[start : start + PUBKEY_LEN])

    def key_array(self) -> npt.NDArray[np.uint8]:
        """The keys as an (n, 32) uint8 view (no copy)."""
        return np.frombuffer(self.keys, dtype=np.uint8).reshape(-1, PUBKEY_LEN)

    def space_array(self) -> npt.NDArray[np.uint32] | None:
        """``spaces`` as an array aligned with the keys, or None when unknown."""
        if self.spaces is None:
            return None
        return np.frombuffer(self.spaces, dtype="<u4").astype(np.uint32)


@dataclass(frozen=True, slots=True)
class Frame:
    """Where a method's answer keeps its accounts (and, for V2, its page's values).

    ``items``: the ijson prefix of one account; ``start``/``end``: the compact head up to
    the array's ``[`` and the tail from its ``]``, each with an optional ``members`` group
    (JSON object members beside the array); ``head_braces``: the ``{`` a head holds;
    ``restart``: the head handed to the library parser mid-body; ``extras``: ijson
    prefixes captured into ``values`` under their last name.
    """

    items: str
    start: re.Pattern[bytes]
    end: re.Pattern[bytes]
    head_braces: int
    restart: bytes
    container: type
    extras: tuple[tuple[str, str], ...] = ()


STANDARD: Final = Frame("result.item", _RESULT_START, _RESULT_END, 1, b'{"result":[', list)
PAGE: Final = Frame(
    "result.accounts.item",
    _V2_START,
    _V2_END,
    3,
    b'{"result":{"accounts":[',
    dict,
    (("result.paginationKey", "paginationKey"), ("result.context.slot", "slot")),
)


def _members(found: re.Match[bytes]) -> dict[str, Any]:
    """The ``members`` group of a head or tail as a dict (``,`` on either side trimmed)."""
    text = (found.groupdict().get("members") or b"").strip().strip(b",")
    if not text:
        return {}
    try:
        members = json.loads(b"{" + text + b"}")
    except ValueError:
        return {}
    if not isinstance(members, dict):
        return {}
    values: dict[str, Any] = {}
    if "paginationKey" in members:
        values["paginationKey"] = members["paginationKey"]
    context = members.get("context")
    if isinstance(context, dict) and "slot" in context:
        values["slot"] = context["slot"]
    return values


class BodyParser(Protocol):
    @property
    def accounts(self) -> int: ...

    @property
    def values(self) -> dict[str, Any]: ...

    def feed(self, raw: bytes) -> list[AccountChunk]: ...

    def end(self) -> list[AccountChunk]: ...

    def finish(self) -> list[AccountChunk]: ...


Entry = tuple[bytes, bytes, int | None]  # key, data, space (None: not given)


class ChunkBuilder:
    """Packs (key, data, space) entries into chunks; holds at most one chunk's worth.

    Keys the body already gave are dropped at each chunk and counted (``SeenKeys``).
    """

    def __init__(self, where: str, record_size: int, chunk_size: int) -> None:
        self._where = where
        self._record_size = record_size
        self._chunk_size = chunk_size
        self._keys = bytearray()
        self._data = bytearray()
        self._spaces = array("I")
        self._spaces_known = True
        self._odd: list[tuple[Pubkey, bytes]] = []
        self._count = 0
        self._seen = SeenKeys()
        self.accounts = 0

    def add(self, key: bytes, blob: bytes, space: int | None = None) -> AccountChunk | None:
        if len(key) != PUBKEY_LEN:
            raise RpcResponseError(f"{self._where}: an account key of {len(key)} bytes")
        if len(blob) == self._record_size:
            self._keys += key
            self._data += blob
            if space is None:
                self._spaces_known = False
            else:
                self._spaces.append(space)
        else:
            self._odd.append((Pubkey.from_bytes(key), blob))
        self._count += 1
        self.accounts += 1
        return self.flush() if self._count >= self._chunk_size else None

    def add_all(self, entries: Iterable[Entry]) -> list[AccountChunk]:
        chunks = []
        for key, blob, space in entries:
            chunk = self.add(key, blob, space)
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
        before = self._seen.duplicates
        keys = np.frombuffer(bytes(self._keys), dtype=np.uint8).reshape(-1, PUBKEY_LEN)
        fresh = self._seen.fresh(keys)
        spaces = self._spaces.tobytes() if self._spaces_known else None
        if fresh.all():
            chunk_keys, data = bytes(self._keys), bytes(self._data)
        else:
            chunk_keys = keys[fresh].tobytes()
            rows = np.frombuffer(bytes(self._data), dtype=np.uint8)
            rows = rows.reshape(len(keys), self._record_size)
            data = rows[fresh].tobytes()
            if spaces is not None:
                spaces = np.frombuffer(spaces, dtype="<u4")[fresh].tobytes()
        odd = self._fresh_odd()
        chunk = AccountChunk(
            chunk_keys,
            data,
            self._record_size,
            odd,
            spaces,
            duplicates=self._seen.duplicates - before,
        )
        self._keys.clear()
        self._data.clear()
        self._spaces = array("I")
        self._spaces_known = True
        self._odd.clear()
        self._count = 0
        return chunk

    def _fresh_odd(self) -> tuple[tuple[Pubkey, bytes], ...]:
        if not self._odd:
            return ()
        keys = np.frombuffer(b"".join(bytes(key) for key, _ in self._odd), dtype=np.uint8)
        fresh = self._seen.fresh(keys.reshape(-1, PUBKEY_LEN))
        return tuple(entry for entry, new in zip(self._odd, fresh.tolist(), strict=True) if new)


def _decode_entry(where: str, entry: Any) -> Entry:  # noqa: ANN401 - JSON
    """(key, account data, space) of one ``{"pubkey", "account": {"data": [b64, enc]}}``."""
    try:
        key = based58.b58decode(entry["pubkey"].encode())
        encoded, encoding = entry["account"]["data"]
        blob = binascii.a2b_base64(encoded)
        space = entry["account"].get("space")
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise RpcResponseError(f"{where}: malformed account entry ({error})") from error
    if encoding != "base64":
        raise RpcResponseError(f"{where}: data in {encoding!r}, asked for base64")
    if space is not None and (not isinstance(space, int) or isinstance(space, bool)):
        raise RpcResponseError(f"{where}: an account space of {space!r}")
    return key, blob, space


class ShapeError(RpcResponseError):
    """An answer with no accounts where the method's envelope puts them (another method's
    shape: a node that does not serve the method asked for, or a proxy)."""


def _check_empty_body(where: str, head: bytes, size: int, frame: Frame = STANDARD) -> None:
    """No accounts: an empty result, or an error object (which is never large)."""
    if size > _HEAD_LIMIT:
        raise ShapeError(f"{where}: {size} bytes and no accounts where they belong")
    try:
        payload = json.loads(head)
    except ValueError as error:
        raise RpcResponseError(f"{where}: the body is not valid JSON") from error
    if isinstance(payload, dict) and payload.get("error") is not None:
        raise json_rpc_error(where, payload["error"])
    result = payload.get("result") if isinstance(payload, dict) else None
    if not isinstance(result, frame.container):
        shape = "array" if frame.container is list else "object"
        raise ShapeError(f"{where}: a response without a result {shape}")
    if isinstance(result, dict) and not isinstance(result.get("accounts"), list):
        raise ShapeError(f"{where}: a response without an accounts array")


class LibraryParser:
    """Any valid JSON body, through ijson's incremental parser."""

    def __init__(
        self,
        where: str,
        builder: ChunkBuilder,
        frame: Frame = STANDARD,
        values: dict[str, Any] | None = None,
    ) -> None:
        self._where = where
        self._frame = frame
        self._entries = ijson.sendable_list()
        self._parser = _yajl.items_coro(self._entries, frame.items)
        self._extras = [
            (name, found := ijson.sendable_list(), _yajl.items_coro(found, prefix))
            for prefix, name in frame.extras
        ]
        self._builder = builder
        self._start = builder.accounts
        self._head = bytearray()
        self._size = 0
        self.values: dict[str, Any] = {} if values is None else values

    @property
    def accounts(self) -> int:
        """Accounts of this body (the builder may be shared by several bodies)."""
        return self._builder.accounts - self._start

    def feed(self, raw: bytes) -> list[AccountChunk]:
        if self._size < _HEAD_LIMIT:
            self._head += raw[: _HEAD_LIMIT - self._size]
        self._size += len(raw)
        try:
            self._parser.send(raw)
            for _name, _found, extra in self._extras:
                extra.send(raw)
        except ijson.JSONError as error:
            raise RpcResponseError(f"{self._where}: the body is not valid JSON") from error
        return self._drain()

    def end(self) -> list[AccountChunk]:
        """The body is over: its last chunks, keeping the builder's partial chunk."""
        try:
            self._parser.close()
            for name, found, extra in self._extras:
                extra.close()
                if found:
                    self.values[name] = found[0]
        except ijson.JSONError as error:
            raise RpcResponseError(f"{self._where}: the body ended early") from error
        chunks = self._drain()
        if not self.accounts:
            _check_empty_body(self._where, bytes(self._head), self._size, self._frame)
        return chunks

    def finish(self) -> list[AccountChunk]:
        return self.end() + self._builder.rest()

    def _drain(self) -> list[AccountChunk]:
        pairs = [_decode_entry(self._where, entry) for entry in self._entries]
        self._entries.clear()
        return self._builder.add_all(pairs)


class CompactParser:
    """The compact body every node sends, at C speed; anything else to ``LibraryParser``."""

    def __init__(self, where: str, builder: ChunkBuilder, frame: Frame = STANDARD) -> None:
        self._where = where
        self._builder = builder
        self._frame = frame
        self._start = builder.accounts
        self._buffer = bytearray()
        self._in_result = False
        self._library: LibraryParser | None = None
        self.values: dict[str, Any] = {}

    @property
    def accounts(self) -> int:
        """Accounts of this body (the builder may be shared by several bodies)."""
        return self._builder.accounts - self._start

    def feed(self, raw: bytes) -> list[AccountChunk]:
        if self._library is not None:
            return self._library.feed(raw)
        self._buffer += raw
        if not self._in_result:
            found = self._frame.start.match(self._buffer)
            if found is None:
                return [] if self._head_may_match() else self._to_library(b"")
            self.values.update(_members(found))
            del self._buffer[: found.end()]
            self._in_result = True
        cut = self._buffer.rfind(_SEPARATOR)
        if cut < 0:
            if len(self._buffer) > _MAX_ITEM_BYTES:
                return self._to_library(self._frame.restart)
            return []
        whole = bytes(self._buffer[: cut + 1])
        del self._buffer[: cut + 2]
        return self._items(whole)

    def end(self) -> list[AccountChunk]:
        """The body is over: its last chunks, keeping the builder's partial chunk."""
        handed: list[AccountChunk] = []
        if self._library is None and not self._in_result:
            handed = self._to_library(b"")  # a body whose head never took the compact shape
        if self._library is not None:
            return handed + self._library.end()
        rest = bytes(self._buffer)
        self._buffer.clear()
        found = _result_end(rest, self._frame.end)
        if found is None:
            raise RpcResponseError(f"{self._where}: the body ended early")
        self.values.update(_members(found))
        end = found.start()
        return self._items(rest[:end]) if rest[:end].strip() else []

    def finish(self) -> list[AccountChunk]:
        return self.end() + self._builder.rest()

    def _head_may_match(self) -> bool:
        """Could more bytes still make the head (``{"jsonrpc":"2.0","result":[``...)?"""
        complete = b"[" in self._buffer or self._buffer.count(b"{") > self._frame.head_braces
        return not complete and len(self._buffer) <= _HEAD_LIMIT

    def _to_library(self, prefix: bytes) -> list[AccountChunk]:
        """The rest of the body to ijson; ``prefix`` restores the head already consumed."""
        self._library = LibraryParser(self._where, self._builder, self._frame, self.values)
        body = prefix + self._buffer
        self._buffer.clear()
        return self._library.feed(bytes(body))

    def _items(self, whole: bytes) -> list[AccountChunk]:
        """``whole``: one or more complete items joined by ``,`` (no outer brackets)."""
        keys = _PUBKEY.findall(whole)
        blobs = _DATA.findall(whole)
        spaces = _SPACE.findall(whole)
        # Each item is two objects (itself and its account): braces that balance at two per
        # key and blob mean whole items; anything else gets the exact, slower reading, and
        # so does a run where only some items give their ``space``.
        braces = whole.count(b"{")
        if not (braces == whole.count(b"}") == 2 * len(keys) == 2 * len(blobs)) or (
            spaces and len(spaces) != len(keys)
        ):
            return self._items_by_stdlib(whole)
        sizes: Iterable[int | None] = map(int, spaces) if spaces else itertools.repeat(None)
        try:
            entries = [
                (based58.b58decode(key), binascii.a2b_base64(blob), size)
                for key, blob, size in zip(keys, blobs, sizes, strict=False)
            ]
        except ValueError as error:
            raise RpcResponseError(f"{self._where}: malformed account entry ({error})") from error
        return self._builder.add_all(entries)

    def _items_by_stdlib(self, whole: bytes) -> list[AccountChunk]:
        try:
            entries = json.loads(b"[" + whole + b"]")
        except ValueError as error:
            raise RpcResponseError(f"{self._where}: the body is not valid JSON") from error
        return self._builder.add_all(_decode_entry(self._where, entry) for entry in entries)


def _result_end(rest: bytes, pattern: re.Pattern[bytes]) -> re.Match[bytes] | None:
    """The tail after the result array's items in the body's last bytes (None: cut short)."""
    close = rest.rfind(b"]")
    while close >= 0:
        found = pattern.fullmatch(rest, close)
        if found:
            return found
        close = rest.rfind(b"]", 0, close)
    return None


def body_parser(
    where: str, record_size: int, chunk_size: int, *, compact: bool = True
) -> BodyParser:
    """A parser for one body: the compact fast path (default) or the library path."""
    builder = ChunkBuilder(where, record_size, chunk_size)
    return page_parser(where, builder, STANDARD, compact=compact)


def page_parser(
    where: str, builder: ChunkBuilder, frame: Frame, *, compact: bool = True
) -> BodyParser:
    """A parser for one body of ``frame``'s shape feeding a (possibly shared) ``builder``."""
    if compact:
        return CompactParser(where, builder, frame)
    return LibraryParser(where, builder, frame)
