"""The live feed against a small websocket node that speaks Solana's subscription protocol."""

from __future__ import annotations

import asyncio
import base64
import json
import struct
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from solders.pubkey import Pubkey
from websockets.asyncio.server import ServerConnection, serve

from keeper.chain.live import (
    SYSTEM_PROGRAM,
    AccountChanged,
    AccountClosed,
    ClockTick,
    FeedSettings,
    LiveFeed,
    Subscribed,
    ws_url_for,
)
from keeper.errors import FeedLost
from keeper.program import filters
from keeper.program.ids import CLOCK_SYSVAR

PROGRAM = Pubkey.new_unique()
JOB = Pubkey.new_unique()
MARKET = Pubkey.new_unique()

Script = Callable[[ServerConnection, dict[str, int]], Any]


def _account(data: bytes, *, owner: Pubkey = PROGRAM, lamports: int = 1_000) -> dict[str, Any]:
    return {
        "data": [base64.b64encode(data).decode(), "base64"],
        "executable": False,
        "lamports": lamports,
        "owner": str(owner),
        "rentEpoch": 0,
        "space": len(data),
    }


def _clock(slot: int, now: int) -> bytes:
    return struct.pack("<QqQQq", slot, 0, 1, 1, now)


def _note(method: str, subscription: int, slot: int, value: Any) -> str:
    result = {"context": {"slot": slot}, "value": value}
    params = {"result": result, "subscription": subscription}
    return json.dumps({"jsonrpc": "2.0", "method": method, "params": params})


@asynccontextmanager
async def node(script: Script) -> AsyncIterator[str]:
    """A websocket node: answers subscriptions with ids (by the subscribed key), then runs
    ``script(connection, ids)``, where ids maps "program" (the jobs' programSubscribe),
    "program:run" and each account key to its id. Requests are kept in ``script.requests``."""
    requests: list[dict[str, Any]] = []
    script.requests = requests  # type: ignore[attr-defined]

    async def handler(connection: ServerConnection) -> None:
        ids: dict[str, int] = {}
        expected = 3 + len(getattr(script, "watched", ()))
        async for raw in connection:
            request = json.loads(raw)
            requests.append(request)
            key = _subscribed_key(request)
            ids[key] = 100 + len(ids)
            reply = {"jsonrpc": "2.0", "id": request["id"], "result": ids[key]}
            await connection.send(json.dumps(reply))
            if len(ids) == expected:
                break
        await script(connection, ids)
        await connection.wait_closed()

    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/"


def _subscribed_key(request: dict[str, Any]) -> str:
    if request["method"] != "programSubscribe":
        return str(request["params"][0])
    memcmp = request["params"][1]["filters"][0]["memcmp"]
    return "program:run" if memcmp == filters.is_run()["memcmp"] else "program"


def _settings(url: str, **overrides: Any) -> FeedSettings:
    return FeedSettings(url=url, program_id=PROGRAM, **overrides)


async def _collect(feed: LiveFeed, count: int) -> list[object]:
    events: list[object] = []
    async for event in feed.events():
        events.append(event)
        if len(events) == count:
            break
    return events


async def test_subscribes_then_yields_changes_clock_and_closes() -> None:
    async def script(connection: ServerConnection, ids: dict[str, int]) -> None:
        job = {"pubkey": str(JOB), "account": _account(b"\x01" * 240)}
        await connection.send(_note("programNotification", ids["program"], 7, job))
        clock = _account(_clock(8, 1_700_000_000), owner=SYSTEM_PROGRAM)
        await connection.send(_note("accountNotification", ids[str(CLOCK_SYSVAR)], 8, clock))
        gone = _account(b"", owner=SYSTEM_PROGRAM, lamports=0)
        await connection.send(_note("accountNotification", ids[str(MARKET)], 9, gone))

    script.watched = (MARKET,)  # type: ignore[attr-defined]
    async with node(script) as url, LiveFeed(_settings(url), {MARKET}) as feed:
        events = await _collect(feed, 4)
    assert events[0] == Subscribed()
    changed = events[1]
    assert isinstance(changed, AccountChanged)
    assert (changed.account.key, changed.slot, changed.account.data) == (JOB, 7, b"\x01" * 240)
    tick = events[2]
    assert isinstance(tick, ClockTick)
    assert (tick.time.slot, tick.time.unix_timestamp) == (8, 1_700_000_000)
    assert events[3] == AccountClosed(MARKET, 9)


async def test_the_program_feed_is_one_subscription_per_kind_and_markets_are_sliced() -> None:
    """Jobs and runs through the program feed, each by its discriminator (a market write
    never arrives there); a watched market through its own subscription, sliced; the
    clock whole."""

    async def script(connection: ServerConnection, ids: dict[str, int]) -> None:
        run = {"pubkey": str(JOB), "account": _account(b"\x02" * 120)}
        await connection.send(_note("programNotification", ids["program:run"], 4, run))

    script.watched = (MARKET,)  # type: ignore[attr-defined]
    terms = filters.market_terms()
    async with node(script) as url, LiveFeed(_settings(url, watch_slice=terms), {MARKET}) as feed:
        events = await _collect(feed, 2)
    assert isinstance(events[1], AccountChanged)
    assert events[1].account.data == b"\x02" * 120
    requests = script.requests  # type: ignore[attr-defined]
    programs = [r["params"][1] for r in requests if r["method"] == "programSubscribe"]
    assert [p["filters"] for p in programs] == [[filters.is_job()], [filters.is_run()]]
    assert all(p["encoding"] == "base64" for p in programs)
    accounts = {
        r["params"][0]: r["params"][1] for r in requests if r["method"] == "accountSubscribe"
    }
    assert accounts[str(MARKET)]["dataSlice"] == terms
    assert "dataSlice" not in accounts[str(CLOCK_SYSVAR)]


async def test_a_watched_account_given_to_another_owner_counts_as_closed() -> None:
    async def script(connection: ServerConnection, ids: dict[str, int]) -> None:
        other = _account(b"\x00" * 8, owner=Pubkey.new_unique())
        await connection.send(_note("accountNotification", ids[str(MARKET)], 3, other))

    script.watched = (MARKET,)  # type: ignore[attr-defined]
    async with node(script) as url, LiveFeed(_settings(url), {MARKET}) as feed:
        events = await _collect(feed, 2)
    assert events[1] == AccountClosed(MARKET, 3)


async def test_silence_past_the_watchdog_loses_the_feed() -> None:
    async def script(_connection: ServerConnection, _ids: dict[str, int]) -> None:
        return  # the connection stays open, answering pings, saying nothing

    async with node(script) as url, LiveFeed(_settings(url, silence_timeout_s=0.3)) as feed:
        with pytest.raises(FeedLost, match="silent"):
            await _collect(feed, 10)


async def test_a_closed_socket_loses_the_feed() -> None:
    async def script(connection: ServerConnection, _ids: dict[str, int]) -> None:
        await connection.close()

    async with node(script) as url, LiveFeed(_settings(url)) as feed:
        with pytest.raises(FeedLost, match="closed"):
            await _collect(feed, 10)


async def test_a_refused_connection_is_feed_lost() -> None:
    async with node(lambda *_: asyncio.sleep(0)) as url:
        pass  # the server is gone again: nothing listens on its port
    with pytest.raises(FeedLost, match="cannot connect"):
        async with LiveFeed(_settings(url, open_timeout_s=2)):
            pass


async def test_a_refused_subscription_is_feed_lost() -> None:
    async def handler(connection: ServerConnection) -> None:
        request = json.loads(await connection.recv())
        error = {"code": -32601, "message": "Method not found"}
        await connection.send(json.dumps({"jsonrpc": "2.0", "id": request["id"], "error": error}))
        await connection.wait_closed()

    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        async with LiveFeed(_settings(f"ws://127.0.0.1:{port}/")) as feed:
            with pytest.raises(FeedLost, match="refused"):
                await _collect(feed, 10)


@pytest.mark.parametrize(
    ("http", "ws"),
    [
        ("http://127.0.0.1:8899", "ws://127.0.0.1:8899"),
        ("https://rpc.example.com/v2/key?x=1", "wss://rpc.example.com/v2/key?x=1"),
        ("wss://already.example.com/", "wss://already.example.com/"),
    ],
)
def test_ws_url_follows_the_rpc_url(http: str, ws: str) -> None:
    assert ws_url_for(http) == ws


def test_ws_url_rejects_other_schemes() -> None:
    with pytest.raises(ValueError, match="not an http"):
        ws_url_for("ftp://example.com/secret-key-1234567890")
