"""getProgramAccounts, streamed: memory is bounded by one chunk, never by the response.

The body is parsed as bytes arrive (``keeper.chain.scan_body``); accounts are packed into
``AccountChunk``s of at most ``chunk_size`` records — keys and data each one contiguous
``bytes`` — ready for ``keeper.program.batch.decode_records``. Records whose data length
is not ``record_size`` (legacy layouts, a wrong filter) travel apart in
``AccountChunk.odd``: counted and reported, never a crash.

Retries cover the request up to its HTTP status. A failure while the body streams raises
a typed error (``RpcTimeout``, ``RpcUnreachable``, ``RpcResponseError``): chunks already
yielded cannot be taken back, so the caller restarts the scan from scratch (a pass keeps
nothing between scans, so a restart is always safe).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

from keeper.chain.scan_body import AccountChunk, body_parser

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

    from solders.pubkey import Pubkey

    from keeper.chain.endpoints import Rpc
    from keeper.program.filters import DataSliceParam, Filter

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "AccountChunk",
    "ScanObserver",
    "count_program_accounts",
    "observed",
]

DEFAULT_CHUNK_SIZE: Final = 10_000
_METHOD: Final = "getProgramAccounts"

Commitment = Literal["processed", "confirmed", "finalized"]


class ScanObserver(Protocol):
    """Told how a scan advances (a progress display lives in the service layer)."""

    def scan_progress(self, what: str, accounts: int) -> None:
        """``accounts`` read so far by the scan named ``what``."""

    def scan_finished(self, what: str, accounts: int) -> None:
        """The scan named ``what`` ended (normally or not) after ``accounts``."""


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
    rpc: Rpc,
    program_id: Pubkey,
    filters: Sequence[Filter],
    data_slice: DataSliceParam | None,
    *,
    record_size: int,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    commitment: Commitment = "confirmed",
    read_timeout_s: float | None = None,
    observer: ScanObserver | None = None,
    what: str = "accounts",
) -> AsyncIterator[AccountChunk]:
    """Yield the program's matching accounts, ``chunk_size`` at a time, as they arrive.

    ``record_size`` is the data length every account should have (the slice's length, or
    the allocated size without a slice). ``read_timeout_s`` overrides the client's timeout
    for the wait before the first byte: a node may think for a while over a large scan.
    ``observer`` hears the count of accounts read after each chunk, under the name ``what``.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    params = program_accounts_params(program_id, filters, data_slice, commitment)
    parser = body_parser(f"{_METHOD} at {rpc.redacted_url}", record_size, chunk_size)
    read = 0
    try:
        async with rpc.stream(_METHOD, params, read_timeout_s=read_timeout_s) as body:
            async for raw in body:
                for chunk in parser.feed(raw):
                    read += len(chunk) + len(chunk.odd)
                    if observer is not None:
                        observer.scan_progress(what, read)
                    yield chunk
            for chunk in parser.finish():
                read += len(chunk) + len(chunk.odd)
                yield chunk
    finally:
        if observer is not None:
            observer.scan_finished(what, read)


async def count_program_accounts(
    rpc: Rpc,
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


async def observed(
    chunks: AsyncIterator[AccountChunk], observer: ScanObserver, what: str
) -> AsyncIterator[AccountChunk]:
    """``chunks`` as they come, telling ``observer`` the accounts read after each (any scan
    method: standard or paginated)."""
    read = 0
    try:
        async for chunk in chunks:
            read += len(chunk) + len(chunk.odd)
            observer.scan_progress(what, read)
            yield chunk
    finally:
        observer.scan_finished(what, read)
