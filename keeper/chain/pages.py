"""Paginated scans (``getProgramAccountsV2``) behind the same interface as the streamed one.

``scan_program_accounts`` is the one entry point: ``ScanOptions.method`` picks the plain
``getProgramAccounts`` (``keeper.chain.scan``) or the pages of ``getProgramAccountsV2``
(Helius' shape: getProgramAccounts' params plus ``limit``, an opaque ``paginationKey``
and ``changedSinceSlot``, inclusive). Both yield the same ``AccountChunk``s.

A page *visits* up to ``limit`` of the program's accounts and then filters, so a page may
be short, even empty, and still not be the last: only a null ``paginationKey`` ends the
walk. Every page is one request, with the client's retries and its deadline
(``rpc.scan_deadline_seconds``) each; a failure while a page's body streams fails the
scan, as for the plain scan (chunks already yielded cannot be taken back). One
``ChunkBuilder`` serves every page, so memory stays one chunk and a key that comes back on
a later page is dropped and counted as a duplicate, as within one answer.

``ScanMark`` records the context slots the pages answered at. A walk of many pages spans
slots: an account changed after its page was read but before the walk ended carries a
slot below the last page's, so the next changed-since read must start at the *lowest*
slot (``ScanMark.since``; the parameter is inclusive, so re-reading a few is harmless).
A changed-since read never shows a closed account (it has left the program's index).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

from keeper.chain.rpc import RpcCallError
from keeper.chain.scan import (
    DEFAULT_CHUNK_SIZE,
    Commitment,
    program_accounts_params,
    stream_program_accounts,
)
from keeper.chain.scan_body import (
    PAGE,
    AccountChunk,
    BodyParser,
    ChunkBuilder,
    ShapeError,
    page_parser,
)
from keeper.errors import ConfigError, RpcResponseError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

    from solders.pubkey import Pubkey

    from keeper.chain.endpoints import Rpc
    from keeper.program.filters import DataSliceParam, Filter

__all__ = [
    "PAGE_LIMIT_MAX",
    "PaginatedScanUnsupported",
    "ScanMark",
    "ScanMethod",
    "ScanOptions",
    "scan_program_accounts",
    "stream_program_accounts_paged",
]

PAGED_METHOD: Final = "getProgramAccountsV2"
PAGE_LIMIT_MAX: Final = 10_000
_METHOD_NOT_FOUND: Final = -32601
_FIX: Final = (
    "set rpc.scan_method: standard (KEEPER_RPC_SCAN_METHOD=standard), or point rpc.url at "
    "a provider that serves getProgramAccountsV2 (Helius)"
)


class ScanMethod(StrEnum):
    """How a full read lists a program's accounts: the ``rpc.scan_method`` setting."""

    STANDARD = "standard"
    PAGINATED = "paginated"


class PaginatedScanUnsupported(RpcCallError):
    """The endpoint does not serve getProgramAccountsV2 (or not in Helius' shape)."""

    hint = _FIX


@dataclass(frozen=True, slots=True)
class ScanOptions:
    """How to scan: the method, accounts per chunk, and for pages the ``limit`` of each."""

    method: ScanMethod = ScanMethod.STANDARD
    chunk_size: int = DEFAULT_CHUNK_SIZE
    page_limit: int = PAGE_LIMIT_MAX


@dataclass(slots=True)
class ScanMark:
    """What paginated scans saw: context slots (lowest and highest) and pages requested.

    Share one mark across the scans of a read: ``since`` is then the slot a later
    changed-since read must start from to miss nothing any of them could have missed.
    """

    low: int | None = None
    high: int | None = None
    pages: int = 0

    def saw(self, slot: int) -> None:
        self.low = slot if self.low is None else min(self.low, slot)
        self.high = slot if self.high is None else max(self.high, slot)

    @property
    def since(self) -> int | None:
        """``changedSinceSlot`` for the next read (None: no page gave a context slot)."""
        return self.low


def paged_params(  # noqa: PLR0913 - the RPC call's own parameters
    program_id: Pubkey,
    filters: Sequence[Filter],
    data_slice: DataSliceParam | None,
    commitment: Commitment,
    *,
    limit: int,
    pagination_key: str | None,
    changed_since_slot: int | None,
) -> list[Any]:
    params = program_accounts_params(program_id, filters, data_slice, commitment)
    config: dict[str, Any] = params[1]
    config["withContext"] = True
    config["limit"] = limit
    if pagination_key is not None:
        config["paginationKey"] = pagination_key
    if changed_since_slot is not None:
        config["changedSinceSlot"] = changed_since_slot
    return params


def _check_limit(page_limit: int) -> None:
    if not 1 <= page_limit <= PAGE_LIMIT_MAX:
        raise ValueError(f"page_limit must be between 1 and {PAGE_LIMIT_MAX}")


def _page_values(where: str, values: dict[str, Any]) -> tuple[str | None, int | None]:
    """(next paginationKey, context slot) of a page; a page without the key is not V2's."""
    if "paginationKey" not in values:
        raise PaginatedScanUnsupported(
            f"{where}: the answer has no paginationKey: not a getProgramAccountsV2 page"
        )
    key, slot = values["paginationKey"], values.get("slot")
    if key is not None and (not isinstance(key, str) or not key):
        raise RpcResponseError(f"{where}: a paginationKey of {key!r}")
    if slot is not None and (isinstance(slot, bool) or not isinstance(slot, int) or slot < 0):
        raise RpcResponseError(f"{where}: a context slot of {slot!r}")
    return key, slot


async def stream_program_accounts_paged(  # noqa: PLR0913 - the RPC call's own parameters
    rpc: Rpc,
    program_id: Pubkey,
    filters: Sequence[Filter],
    data_slice: DataSliceParam | None,
    *,
    record_size: int,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    page_limit: int = PAGE_LIMIT_MAX,
    changed_since_slot: int | None = None,
    commitment: Commitment = "confirmed",
    read_timeout_s: float | None = None,
    mark: ScanMark | None = None,
) -> AsyncIterator[AccountChunk]:
    """Yield the matching accounts of every page, ``chunk_size`` at a time, until a page
    answers a null ``paginationKey``. ``changed_since_slot``: only accounts written at or
    after that slot (closed accounts never appear). ``mark`` records the pages' slots."""
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    _check_limit(page_limit)
    mark = ScanMark() if mark is None else mark
    where = f"{PAGED_METHOD} at {rpc.redacted_url}"
    builder = ChunkBuilder(where, record_size, chunk_size)
    keys_given: set[str] = set()
    key: str | None = None
    while True:
        params = paged_params(
            program_id,
            filters,
            data_slice,
            commitment,
            limit=page_limit,
            pagination_key=key,
            changed_since_slot=changed_since_slot,
        )
        parser = page_parser(where, builder, PAGE)
        async for chunk in _one_page(rpc, params, parser, read_timeout_s):
            yield chunk
        mark.pages += 1
        key = _next_key(where, parser.values, mark, keys_given)
        if key is None:
            break
    for chunk in builder.rest():
        yield chunk


async def _one_page(
    rpc: Rpc, params: list[Any], parser: BodyParser, read_timeout_s: float | None
) -> AsyncIterator[AccountChunk]:
    """One page's request (its own retries and deadline) through ``parser``."""
    try:
        async with rpc.stream(PAGED_METHOD, params, read_timeout_s=read_timeout_s) as body:
            async for raw in body:
                for chunk in parser.feed(raw):
                    yield chunk
            for chunk in parser.end():
                yield chunk
    except PaginatedScanUnsupported:
        raise
    except ShapeError as error:
        raise PaginatedScanUnsupported(f"{error}: not a getProgramAccountsV2 page") from error
    except RpcCallError as error:
        if error.code == _METHOD_NOT_FOUND:
            raise PaginatedScanUnsupported(str(error), code=error.code) from error
        raise


def _next_key(
    where: str, values: dict[str, Any], mark: ScanMark, keys_given: set[str]
) -> str | None:
    """The next page's key (None: the walk is over); records the page's slot."""
    key, slot = _page_values(where, values)
    if slot is not None:
        mark.saw(slot)
    if key is None:
        return None
    if key in keys_given:  # a node that hands back a key it gave: the walk never ends
        raise RpcResponseError(f"{where}: paginationKey {key!r} came back: the walk loops")
    keys_given.add(key)
    return key


def scan_program_accounts(  # noqa: PLR0913 - the RPC call's own parameters
    rpc: Rpc,
    program_id: Pubkey,
    filters: Sequence[Filter],
    data_slice: DataSliceParam | None,
    *,
    record_size: int,
    options: ScanOptions,
    changed_since_slot: int | None = None,
    read_timeout_s: float | None = None,
    mark: ScanMark | None = None,
) -> AsyncIterator[AccountChunk]:
    """The program's matching accounts by ``options.method``, as ``AccountChunk``s.

    ``changed_since_slot`` needs the paginated method (getProgramAccounts has no such
    parameter): with the standard one it is a ``ConfigError``.
    """
    if options.method is ScanMethod.PAGINATED:
        return stream_program_accounts_paged(
            rpc,
            program_id,
            filters,
            data_slice,
            record_size=record_size,
            chunk_size=options.chunk_size,
            page_limit=options.page_limit,
            changed_since_slot=changed_since_slot,
            read_timeout_s=read_timeout_s,
            mark=mark,
        )
    if changed_since_slot is not None:
        raise ConfigError(
            "a read of the accounts changed since a slot needs getProgramAccountsV2",
            hint="set rpc.scan_method: paginated on a provider that serves it (Helius)",
        )
    return stream_program_accounts(
        rpc,
        program_id,
        filters,
        data_slice,
        record_size=record_size,
        chunk_size=options.chunk_size,
        read_timeout_s=read_timeout_s,
    )
