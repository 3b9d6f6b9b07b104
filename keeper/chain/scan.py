"""getProgramAccounts, streamed: memory is bounded by one chunk, never by the response.

The body is parsed incrementally (ijson, yajl2_c backend) as bytes arrive; accounts are
packed into ``AccountChunk``s of at most ``chunk_size`` records — keys and data each one
contiguous ``bytes`` — ready for ``keeper.program.batch.decode_records``. Records whose
data length is not ``record_size`` (legacy layouts, a wrong filter) travel apart in
``AccountChunk.odd``: counted and reported, never a crash.

Retries cover the request up to its HTTP status. A failure while the body streams raises
a typed error (``RpcTimeout``, ``RpcUnreachable``, ``RpcResponseError``): chunks already
yielded cannot be taken back, so the caller restarts the scan from scratch (a pass keeps
nothing between scans, so a restart is always safe).
"""

from __future__ import annotations

import binascii
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

import based58
import ijson
import numpy as np
import numpy.typing as npt
from solders.pubkey import Pubkey

from keeper.chain.rpc import json_rpc_error
from keeper.errors import RpcResponseError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

    from keeper.chain.rpc import RpcClient
    from keeper.program.filters import DataSliceParam, Filter

PUBKEY_SIZE: Final = 32
DEFAULT_CHUNK_SIZE: Final = 10_000
_METHOD: Final = "getProgramAccounts"
# An error body is small: the first bytes are kept to explain a response with no accounts.
_HEAD_LIMIT: Final = 64 * 1024
_yajl = ijson.get_backend("yajl2_c")

Commitment = Literal["processed", "confirmed", "finalized"]


@dataclass(frozen=True, slots=True)
class AccountChunk:
    """Up to ``chunk_size`` accounts: ``keys`` is n*32 bytes, ``data`` n*``record_size``."""

    keys: bytes
    data: bytes
    record_size: int
    odd: tuple[tuple[Pubkey, bytes], ...] = ()

    def __len__(self) -> int:
        """Accounts of ``record_size`` bytes (``odd`` ones are not counted here)."""
        return len(self.keys) // PUBKEY_SIZE

    def key(self, index: int) -> Pubkey:
        start = index * PUBKEY_SIZE
        return Pubkey.from_bytes(self.keys[start : start + PUBKEY_SIZE])

    def key_array(self) -> npt.NDArray[np.uint8]:
        """The keys as an (n, 32) uint8 view (no copy)."""
        return np.frombuffer(self.keys, dtype=np.uint8).reshape(-1, PUBKEY_SIZE)


class _ChunkBuilder:
    """Turns parsed JSON entries into chunks; holds at most one chunk's worth."""

    def __init__(self, record_size: int, chunk_size: int) -> None:
        self._record_size = record_size
        self._chunk_size = chunk_size
        self._keys = bytearray()
        self._data = bytearray()
        self._odd: list[tuple[Pubkey, bytes]] = []
        self._count = 0

    def add(self, entry: Any) -> AccountChunk | None:  # noqa: ANN401 - parsed JSON
        key, blob = _decode_entry(entry)
        if len(blob) == self._record_size:
            self._keys += key
            self._data += blob
        else:
            self._odd.append((Pubkey.from_bytes(key), blob))
        self._count += 1
        return self.flush() if self._count >= self._chunk_size else None

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


def _decode_entry(entry: Any) -> tuple[bytes, bytes]:  # noqa: ANN401 - parsed JSON
    """(32-byte key, account data) of one ``{"pubkey", "account": {"data": [b64, enc]}}``."""
    try:
        key = based58.b58decode(entry["pubkey"].encode())
        encoded, encoding = entry["account"]["data"]
        blob = binascii.a2b_base64(encoded)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise RpcResponseError(f"{_METHOD}: malformed account entry ({error})") from error
    if encoding != "base64":
        raise RpcResponseError(f"{_METHOD}: data in {encoding!r}, asked for base64")
    if len(key) != PUBKEY_SIZE:
        raise RpcResponseError(f"{_METHOD}: an account key of {len(key)} bytes")
    return key, blob


class _StreamParser:
    """Feeds body bytes to ijson and hands back finished chunks."""

    def __init__(self, where: str, record_size: int, chunk_size: int) -> None:
        self._where = where
        self._entries = ijson.sendable_list()
        self._parser = _yajl.items_coro(self._entries, "result.item")
        self._builder = _ChunkBuilder(record_size, chunk_size)
        self._head = bytearray()
        self._size = 0
        self.accounts = 0

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
        chunks = self._drain()
        last = self._builder.flush()
        if last is not None:
            chunks.append(last)
        if not self.accounts:
            self._check_empty_body()
        return chunks

    def _drain(self) -> list[AccountChunk]:
        chunks = []
        for entry in self._entries:
            self.accounts += 1
            chunk = self._builder.add(entry)
            if chunk is not None:
                chunks.append(chunk)
        self._entries.clear()
        return chunks

    def _check_empty_body(self) -> None:
        """No accounts: an empty result, or an error object (which is never large)."""
        if self._size > _HEAD_LIMIT:
            raise RpcResponseError(f"{self._where}: {self._size} bytes and no result array")
        payload = json.loads(self._head)
        if isinstance(payload, dict) and payload.get("error") is not None:
            raise json_rpc_error(self._where, payload["error"])
        if not isinstance(payload, dict) or not isinstance(payload.get("result"), list):
            raise RpcResponseError(f"{self._where}: a response without a result array")


def program_accounts_params(
    program_id: Pubkey,
    filters: Sequence[Filter],
    data_slice: DataSliceParam | None,
    commitment: Commitment,
) -> list[Any]:
    config: dict[str, Any] = {"encoding": "base64", "commitment": commitment}
    if filters:
        config["filters"] = list(filters)
    if data_slice is not None:
        config["dataSlice"] = dict(data_slice)
    return [str(program_id), config]


async def stream_program_accounts(  # noqa: PLR0913 - the RPC call's own parameters
    rpc: RpcClient,
    program_id: Pubkey,
    filters: Sequence[Filter],
    data_slice: DataSliceParam | None,
    *,
    record_size: int,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    commitment: Commitment = "confirmed",
    read_timeout_s: float | None = None,
) -> AsyncIterator[AccountChunk]:
    """Yield the program's matching accounts, ``chunk_size`` at a time, as they arrive.

    ``record_size`` is the data length every account should have (the slice's length, or
    the allocated size without a slice). ``read_timeout_s`` overrides the client's timeout
    for the wait before the first byte: a node may think for a while over a large scan.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    params = program_accounts_params(program_id, filters, data_slice, commitment)
    parser = _StreamParser(f"{_METHOD} at {rpc.redacted_url}", record_size, chunk_size)
    async with rpc.stream(_METHOD, params, read_timeout_s=read_timeout_s) as body:
        async for raw in body:
            for chunk in parser.feed(raw):
                yield chunk
        for chunk in parser.finish():
            yield chunk


async def count_program_accounts(
    rpc: RpcClient,
    program_id: Pubkey,
    filters: Sequence[Filter],
    *,
    commitment: Commitment = "confirmed",
    read_timeout_s: float | None = None,
) -> int:
    """How many accounts match ``filters``: keys only cross the wire (``dataSlice`` of 0)."""
    no_data: DataSliceParam = {"offset": 0, "length": 0}
    total = 0
    async for chunk in stream_program_accounts(
        rpc,
        program_id,
        filters,
        no_data,
        record_size=0,
        commitment=commitment,
        read_timeout_s=read_timeout_s,
    ):
        total += len(chunk) + len(chunk.odd)
    return total
