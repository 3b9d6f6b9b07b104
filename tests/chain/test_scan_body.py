"""The compact getProgramAccounts parser against the library (ijson) path: same chunks.

Bodies vary in everything a node may vary (key order, whitespace, ``id`` before or after
``result``, where the bytes are cut); the compact parser must give the library parser's
output exactly, or the same typed error.
"""

from __future__ import annotations

import base64
import itertools
import json
from dataclasses import dataclass

import based58
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keeper.chain.scan_body import (
    PAGE,
    AccountChunk,
    BodyParser,
    ChunkBuilder,
    CompactParser,
    LibraryParser,
    body_parser,
    page_parser,
)
from keeper.errors import RpcError, RpcResponseError

OWNER = "nosJTmGQxvwXy23vng5UjkTbfv91Bzf9jEuro78dAGR"
RECORD = 8


@dataclass(frozen=True)
class Shape:
    """How one node writes a body."""

    account_first: bool = False
    id_first: bool = False
    spaced: bool = False
    data_last: bool = False


def item(key: bytes, data: bytes, shape: Shape) -> dict[str, object]:
    data_field = [base64.b64encode(data).decode(), "base64"]
    fields: dict[str, object] = {
        "lamports": 2_561_280,
        "owner": OWNER,
        "executable": False,
        "rentEpoch": 2**64 - 1,
        "space": len(data),
    }
    account = {**fields, "data": data_field} if shape.data_last else {"data": data_field, **fields}
    pubkey = based58.b58encode(key).decode()
    if shape.account_first:
        return {"account": account, "pubkey": pubkey}
    return {"pubkey": pubkey, "account": account}


def render(accounts: list[tuple[bytes, bytes]], shape: Shape) -> bytes:
    result = [item(key, data, shape) for key, data in accounts]
    payload: dict[str, object] = (
        {"jsonrpc": "2.0", "id": 1, "result": result}
        if shape.id_first
        else {"jsonrpc": "2.0", "result": result, "id": 1}
    )
    if shape.spaced:
        return json.dumps(payload, indent=1).encode()
    return json.dumps(payload, separators=(",", ":")).encode()


def cut(body: bytes, points: list[int]) -> list[bytes]:
    edges = sorted({0, len(body), *(p % (len(body) + 1) for p in points)})
    return [body[a:b] for a, b in itertools.pairwise(edges)]


def run(parser: BodyParser, pieces: list[bytes]) -> list[AccountChunk]:
    chunks = [chunk for piece in pieces for chunk in parser.feed(piece)]
    return chunks + parser.finish()


def flat(chunks: list[AccountChunk]) -> list[tuple[bytes, bytes]]:
    """Every (key, data) in order, regular and odd alike (odd ones keep their place)."""
    out: list[tuple[bytes, bytes]] = []
    for chunk in chunks:
        out.extend(
            (chunk.keys[i * 32 : (i + 1) * 32], chunk.data[i * RECORD : (i + 1) * RECORD])
            for i in range(len(chunk))
        )
        out.extend((bytes(key), data) for key, data in chunk.odd)
    return out


def parsers(chunk_size: int) -> tuple[BodyParser, BodyParser]:
    return (
        body_parser("test", RECORD, chunk_size),
        body_parser("test", RECORD, chunk_size, compact=False),
    )


accounts_strategy = st.lists(
    st.tuples(
        st.binary(min_size=32, max_size=32),
        st.one_of(st.binary(min_size=RECORD, max_size=RECORD), st.binary(max_size=20)),
    ),
    max_size=40,
    unique_by=lambda account: account[0],  # duplicates: test_a_key_given_twice_is_dropped
)
shapes = st.builds(Shape, st.booleans(), st.booleans(), st.booleans(), st.booleans())


@settings(max_examples=300, deadline=None)
@given(
    accounts=accounts_strategy,
    shape=shapes,
    points=st.lists(st.integers(min_value=0, max_value=10_000), max_size=8),
    chunk_size=st.integers(min_value=1, max_value=50),
)
def test_the_compact_parser_gives_what_the_library_gives(
    accounts: list[tuple[bytes, bytes]], shape: Shape, points: list[int], chunk_size: int
) -> None:
    pieces = cut(render(accounts, shape), points)
    compact, library = parsers(chunk_size)
    fast, reference = run(compact, pieces), run(library, pieces)
    assert [(c.keys, c.data, c.odd, c.spaces) for c in fast] == [
        (c.keys, c.data, c.odd, c.spaces) for c in reference
    ]
    assert compact.accounts == library.accounts == len(accounts)
    assert sorted(flat(fast)) == sorted(accounts)
    spaces = [int(n) for c in fast if (column := c.space_array()) is not None for n in column]
    assert spaces == [RECORD] * sum(len(c) for c in fast)  # item() gives the data's length


@settings(max_examples=200, deadline=None)
@given(
    accounts=st.lists(
        st.tuples(st.integers(0, 5), st.binary(min_size=RECORD, max_size=RECORD)), max_size=30
    ),
    chunk_size=st.integers(min_value=1, max_value=10),
    compact=st.booleans(),
)
def test_a_key_given_twice_is_dropped_and_counted(
    accounts: list[tuple[int, bytes]], chunk_size: int, compact: bool
) -> None:
    keyed = [(bytes([n]) * 32, data) for n, data in accounts]
    chunks = run(body_parser("test", RECORD, chunk_size, compact=compact), [render(keyed, Shape())])
    first: dict[bytes, bytes] = {}
    for key, data in keyed:
        first.setdefault(key, data)
    assert flat(chunks) == list(first.items())
    assert sum(chunk.duplicates for chunk in chunks) == len(keyed) - len(first)


@settings(max_examples=200, deadline=None)
@given(
    accounts=accounts_strategy.filter(bool),
    shape=shapes,
    drop=st.integers(min_value=1, max_value=400),
    points=st.lists(st.integers(min_value=0, max_value=10_000), max_size=4),
)
def test_a_body_cut_short_fails_in_both_parsers(
    accounts: list[tuple[bytes, bytes]], shape: Shape, drop: int, points: list[int]
) -> None:
    body = render(accounts, shape)
    body = body[: max(0, len(body) - drop)]
    if not body.strip():
        return
    for parser in parsers(10):
        with pytest.raises(RpcResponseError):
            run(parser, cut(body, points))


def test_a_compact_body_takes_the_fast_path() -> None:
    """No detour through the library for what nodes send (the speed depends on it)."""
    accounts = [(bytes([i]) * 32, bytes(RECORD)) for i in range(1, 200)]
    parser = CompactParser("test", ChunkBuilder("test", RECORD, 50))
    chunks = run(parser, cut(render(accounts, Shape(account_first=True)), [777, 5000]))
    assert parser._library is None
    assert sum(len(c) for c in chunks) == len(accounts)


def test_a_pretty_printed_body_goes_to_the_library_without_growing() -> None:
    accounts = [((i + 1).to_bytes(4, "big") * 8, bytes(RECORD)) for i in range(30_000)]
    body = render(accounts, Shape(spaced=True))
    parser = CompactParser("test", ChunkBuilder("test", RECORD, 1000))
    pieces = cut(body, list(range(0, len(body), 64 * 1024)))
    assert sum(len(c) for c in run(parser, pieces)) == len(accounts)
    assert parser._library is not None


@pytest.mark.parametrize("compact", [True, False])
def test_an_empty_result_is_no_accounts(compact: bool) -> None:
    parser = body_parser("test", RECORD, 10, compact=compact)
    assert run(parser, [b'{"jsonrpc":"2.0","result":[],"id":1}']) == []


@pytest.mark.parametrize("compact", [True, False])
def test_an_error_body_is_a_typed_rpc_error(compact: bool) -> None:
    error = b'{"jsonrpc":"2.0","error":{"code":-32010,"message":"scan {too} [big]"},"id":1}'
    parser = body_parser("test", RECORD, 10, compact=compact)
    with pytest.raises(RpcError, match="scan"):
        run(parser, cut(error, [5, 30]))


@pytest.mark.parametrize("compact", [True, False])
def test_data_in_another_encoding_is_refused(compact: bool) -> None:
    key = based58.b58encode(bytes(32)).decode()
    body = (
        '{"jsonrpc":"2.0","result":[{"pubkey":"' + key + '","account":{"data":["AA==",'
        '"base64+zstd"],"owner":"' + OWNER + '"}},{"pubkey":"' + key + '","account":{"data":'
        '["AA==","base64"],"owner":"' + OWNER + '"}}],"id":1}'
    ).encode()
    with pytest.raises(RpcResponseError, match="base64"):
        run(body_parser("test", RECORD, 10, compact=compact), [body])


@pytest.mark.parametrize(
    "bad_key", ["0OIl", "1" * 60, "11111111111111111111111111111111111111111111111111"]
)
def test_a_key_that_is_not_32_base58_bytes_is_refused(bad_key: str) -> None:
    body = render([(bytes(32), bytes(RECORD))], Shape()).replace(
        based58.b58encode(bytes(32)), bad_key.encode()
    )
    for parser in parsers(10):
        with pytest.raises(RpcResponseError):
            run(parser, [body])


def test_trailing_bytes_after_the_body_are_refused() -> None:
    body = render([(bytes(32), bytes(RECORD))], Shape()) + b'{"more":1}'
    with pytest.raises(RpcResponseError):
        run(CompactParser("test", ChunkBuilder("test", RECORD, 10)), [body])


def test_the_library_parser_reads_what_the_compact_one_hands_over() -> None:
    builder = ChunkBuilder("test", RECORD, 10)
    parser = LibraryParser("test", builder)
    body = render([(bytes([7]) * 32, bytes(RECORD))], Shape(spaced=True))
    assert [len(c) for c in run(parser, [body])] == [1]


# -- getProgramAccountsV2 pages -------------------------------------------------------------


def render_page(
    accounts: list[tuple[bytes, bytes]],
    shape: Shape,
    *,
    next_key: str | None,
    slot: int | None,
    context_last: bool,
    key_first: bool,
) -> bytes:
    """A V2 page: ``context`` before or after the accounts, ``paginationKey`` last or first."""
    members: list[tuple[str, object]] = [("accounts", [item(k, d, shape) for k, d in accounts])]
    key_member = ("paginationKey", next_key)
    members = [key_member, *members] if key_first else [*members, key_member]
    if slot is not None:
        context = ("context", {"slot": slot, "apiVersion": "2.2.0"})
        members = [*members, context] if context_last else [context, *members]
    payload = {"jsonrpc": "2.0", "result": dict(members), "id": 1}
    if shape.spaced:
        return json.dumps(payload, indent=1).encode()
    return json.dumps(payload, separators=(",", ":")).encode()


@settings(max_examples=200, deadline=None)
@given(
    accounts=accounts_strategy,
    shape=shapes,
    next_key=st.one_of(st.none(), st.text("abcXYZ019=_-", min_size=1, max_size=12)),
    slot=st.one_of(st.none(), st.integers(min_value=0, max_value=2**40)),
    context_last=st.booleans(),
    key_first=st.booleans(),
    points=st.lists(st.integers(min_value=0, max_value=10_000), max_size=6),
)
def test_a_v2_page_parses_the_same_either_way_with_its_key_and_slot(
    *,
    accounts: list[tuple[bytes, bytes]],
    shape: Shape,
    next_key: str | None,
    slot: int | None,
    context_last: bool,
    key_first: bool,
    points: list[int],
) -> None:
    body = render_page(
        accounts,
        shape,
        next_key=next_key,
        slot=slot,
        context_last=context_last,
        key_first=key_first,
    )
    pieces = cut(body, points)
    results = []
    for compact in (True, False):
        parser = page_parser("test", ChunkBuilder("test", RECORD, 7), PAGE, compact=compact)
        results.append((run(parser, pieces), parser.values))
    (fast, fast_values), (reference, reference_values) = results
    assert flat(fast) == flat(reference)
    assert sorted(flat(fast)) == sorted(accounts)
    expected: dict[str, object] = {"paginationKey": next_key}
    if slot is not None:
        expected["slot"] = slot
    assert fast_values == reference_values == expected


def test_pages_sharing_a_builder_drop_a_key_a_later_page_repeats() -> None:
    builder = ChunkBuilder("test", RECORD, 100)
    first = [(bytes([1]) * 32, bytes(RECORD)), (bytes([2]) * 32, bytes(RECORD))]
    second = [(bytes([2]) * 32, bytes(RECORD)), (bytes([3]) * 32, bytes(RECORD))]
    chunks: list[AccountChunk] = []
    for accounts in (first, second):
        parser = page_parser("test", builder, PAGE)
        body = render_page(
            accounts, Shape(), next_key=None, slot=1, context_last=False, key_first=False
        )
        chunks += parser.feed(body) + parser.end()
    chunks += builder.rest()
    assert [key[0] for key, _data in flat(chunks)] == [1, 2, 3]
    assert sum(chunk.duplicates for chunk in chunks) == 1


def test_a_compact_v2_page_takes_the_fast_path() -> None:
    accounts = [(bytes([i]) * 32, bytes(RECORD)) for i in range(1, 200)]
    body = render_page(
        accounts, Shape(), next_key="next", slot=5, context_last=False, key_first=False
    )
    parser = page_parser("test", ChunkBuilder("test", RECORD, 50), PAGE)
    assert isinstance(parser, CompactParser)
    chunks = run(parser, cut(body, [1000, 5000]))
    assert parser._library is None
    assert len(flat(chunks)) == len(accounts)
    assert parser.values == {"paginationKey": "next", "slot": 5}
