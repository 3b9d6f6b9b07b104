"""The live feed: the program's accounts and the chain clock over the RPC node's websocket.

One connection carries one ``programSubscribe`` on the Jobs program per account kind it
follows (base64, a memcmp filter on the kind's discriminator: by default JobAccounts and
RunAccounts, so a 10,224-byte MarketAccount write never comes through the program feed),
an ``accountSubscribe`` on the Clock sysvar (chain time, and a heartbeat every slot) and
one ``accountSubscribe`` per watched account (markets, optionally with a ``dataSlice``:
a real node sends no ``programNotification`` when a program account is closed — the
closed account is the default account, owned by the system program, and leaves the
program's index — but an ``accountNotification`` does arrive, with 0 lamports and the
system program as owner). So each market write arrives once, through its own
subscription, and sliced to what the decisions read.

``LiveFeed.events()`` yields typed events until the connection is lost; it then raises
``FeedLost`` and the caller reconnects (and resyncs with a full read: whatever happened
while the socket was down was not seen). A watchdog raises ``FeedLost`` when nothing at
all arrives for ``silence_timeout_s`` (a stalled socket can stay open for ever), and
websocket pings keep an idle connection from being closed by a provider.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Self
from urllib.parse import urlsplit, urlunsplit

import structlog
import websockets
from solders.pubkey import Pubkey

from keeper.chain.accounts import RawAccount, parse_account
from keeper.chain.clock import ChainTime, decode_clock
from keeper.chain.redact import redact_url
from keeper.errors import FeedLost, RpcResponseError
from keeper.program import filters
from keeper.program.ids import CLOCK_SYSVAR

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from websockets.asyncio.client import ClientConnection

    from keeper.chain.scan import Commitment

log = structlog.get_logger("keeper.chain.live")

SYSTEM_PROGRAM: Final = Pubkey.from_string("11111111111111111111111111111111")
_SCHEMES: Final = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}
_MAX_MESSAGE_BYTES: Final = 16 * 1024 * 1024


def ws_url_for(http_url: str) -> str:
    """The websocket URL of an RPC URL: the same address with ``ws(s)://``."""
    parts = urlsplit(http_url)
    scheme = _SCHEMES.get(parts.scheme)
    if scheme is None:
        raise ValueError(f"{redact_url(http_url)}: not an http(s) or ws(s) URL")
    return urlunsplit((scheme, parts.netloc, parts.path, parts.query, parts.fragment))


@dataclass(frozen=True, slots=True)
class Subscribed:
    """Every subscription is confirmed: from here on no change is missed (resync now)."""

    slot: int | None = None


@dataclass(frozen=True, slots=True)
class AccountChanged:
    """A program account was written (created or changed), at ``slot``."""

    account: RawAccount
    slot: int


@dataclass(frozen=True, slots=True)
class AccountClosed:
    """A watched account no longer exists (0 lamports, or handed to another owner)."""

    key: Pubkey
    slot: int


@dataclass(frozen=True, slots=True)
class ClockTick:
    """The Clock sysvar changed: chain time at ``time.slot``."""

    time: ChainTime


FeedEvent = Subscribed | AccountChanged | AccountClosed | ClockTick


# The program feed's subscriptions: one per account kind (markets come through their own
# accountSubscribe, which also carries their close).
JOBS_AND_RUNS: Final[tuple[tuple[filters.Filter, ...], ...]] = (
    (filters.is_job(),),
    (filters.is_run(),),
)


@dataclass(frozen=True, slots=True)
class FeedSettings:
    """``program_filters``: one programSubscribe per entry, with those filters;
    ``watch_slice``: the ``dataSlice`` of every watched account's notifications (None: whole)."""

    url: str
    program_id: Pubkey
    commitment: Commitment = "confirmed"
    ping_interval_s: float = 20.0
    silence_timeout_s: float = 60.0
    open_timeout_s: float = 10.0
    program_filters: tuple[tuple[filters.Filter, ...], ...] = JOBS_AND_RUNS
    watch_slice: filters.DataSliceParam | None = None


class LiveFeed:
    """One websocket connection's worth of events. Use ``async with LiveFeed(...)``."""

    def __init__(
        self,
        settings: FeedSettings,
        watched: set[Pubkey] | None = None,
        *,
        on_bytes: Callable[[str, int], None] | None = None,
    ) -> None:
        self._settings = settings
        self._on_bytes = on_bytes  # message bytes by method (answers: "subscribe")
        self.redacted_url = redact_url(settings.url)
        self._watched: set[Pubkey] = set(watched or ())
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[str, Pubkey | None]] = {}  # request id -> what
        self._subscriptions: dict[int, tuple[str, Pubkey | None]] = {}  # sub id -> what
        self._by_key: dict[Pubkey, int] = {}
        self._socket: ClientConnection | None = None

    async def __aenter__(self) -> Self:
        try:
            self._socket = await websockets.connect(
                self._settings.url,
                open_timeout=self._settings.open_timeout_s,
                ping_interval=self._settings.ping_interval_s,
                ping_timeout=self._settings.ping_interval_s,
                max_size=_MAX_MESSAGE_BYTES,
            )
        except (OSError, TimeoutError, websockets.exceptions.WebSocketException) as error:
            raise FeedLost(f"websocket {self.redacted_url}: cannot connect ({error})") from error
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._socket is not None:
            with contextlib.suppress(Exception):
                await self._socket.close()

    # -- subscriptions ----------------------------------------------------------------

    async def _request(
        self, method: str, params: list[Any], what: tuple[str, Pubkey | None]
    ) -> None:
        request_id = next(self._ids)
        self._pending[request_id] = what
        message = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
        await self._send(message)

    async def _send(self, message: dict[str, Any]) -> None:
        assert self._socket is not None, "use LiveFeed as an async context manager"
        try:
            await self._socket.send(json.dumps(message))
        except websockets.exceptions.WebSocketException as error:
            raise FeedLost(f"websocket {self.redacted_url}: send failed ({error})") from error

    def _account_config(self) -> dict[str, Any]:
        return {"encoding": "base64", "commitment": self._settings.commitment}

    async def _subscribe_all(self) -> None:
        program = str(self._settings.program_id)
        for kind_filters in self._settings.program_filters:
            config = {**self._account_config(), "filters": list(kind_filters)}
            await self._request("programSubscribe", [program, config], ("program", None))
        await self._subscribe_account(CLOCK_SYSVAR)
        for key in self._watched:
            await self._subscribe_account(key)

    async def _subscribe_account(self, key: Pubkey) -> None:
        config = self._account_config()
        if key != CLOCK_SYSVAR and self._settings.watch_slice is not None:
            config["dataSlice"] = self._settings.watch_slice
        await self._request("accountSubscribe", [str(key), config], ("account", key))

    async def watch(self, key: Pubkey) -> None:
        """Be told when ``key`` changes or closes (markets: their close is never in the
        program feed)."""
        if key in self._watched:
            return
        self._watched.add(key)
        if self._socket is not None:
            await self._subscribe_account(key)

    async def unwatch(self, key: Pubkey) -> None:
        self._watched.discard(key)
        subscription = self._by_key.pop(key, None)
        if subscription is not None and self._socket is not None:
            self._subscriptions.pop(subscription, None)
            await self._request("accountUnsubscribe", [subscription], ("unsubscribe", key))

    # -- events -----------------------------------------------------------------------

    async def events(self) -> AsyncIterator[FeedEvent]:
        """Subscribe, then yield events until the connection is lost (``FeedLost``)."""
        await self._subscribe_all()
        announced = False
        while True:
            message = await self._receive()
            event = self._handle(message)
            if event is not None:
                yield event
            if not announced and not self._pending:
                announced = True
                yield Subscribed()

    async def _receive(self) -> dict[str, Any]:
        assert self._socket is not None
        try:
            async with asyncio.timeout(self._settings.silence_timeout_s):
                raw = await self._socket.recv()
        except TimeoutError as error:
            raise FeedLost(
                f"websocket {self.redacted_url}: silent for {self._settings.silence_timeout_s} s"
            ) from error
        except websockets.exceptions.WebSocketException as error:
            raise FeedLost(f"websocket {self.redacted_url}: closed ({error})") from error
        try:
            message = json.loads(raw)
        except ValueError as error:
            raise FeedLost(f"websocket {self.redacted_url}: a message that is not JSON") from error
        if not isinstance(message, dict):
            raise FeedLost(f"websocket {self.redacted_url}: a message that is not an object")
        if self._on_bytes is not None:
            self._on_bytes(str(message.get("method", "subscribe")), len(raw))
        return message

    def _handle(self, message: dict[str, Any]) -> FeedEvent | None:
        if "id" in message and message.get("id") in self._pending:
            self._confirmed(message)
            return None
        method = message.get("method")
        params = message.get("params")
        if not isinstance(params, dict):
            return None
        what = self._subscriptions.get(params.get("subscription"))  # type: ignore[arg-type]
        if what is None:
            return None  # a notification for a subscription we dropped: ignore
        try:
            if method == "programNotification":
                return _program_event(params["result"])
            if method == "accountNotification" and what[1] is not None:
                return _account_event(what[1], params["result"], self._settings.program_id)
        except (KeyError, TypeError, ValueError, RpcResponseError) as error:
            log.warning("live feed: malformed notification", method=method, error=str(error))
        return None

    def _confirmed(self, message: dict[str, Any]) -> None:
        what = self._pending.pop(message["id"])
        if message.get("error") is not None:
            raise FeedLost(f"websocket {self.redacted_url}: {what[0]} refused ({message['error']})")
        if what[0] == "unsubscribe":
            return
        subscription = message.get("result")
        if not isinstance(subscription, int):
            raise FeedLost(f"websocket {self.redacted_url}: {what[0]} without a subscription id")
        self._subscriptions[subscription] = what
        if what[1] is not None:
            self._by_key[what[1]] = subscription


def _slot(result: dict[str, Any]) -> int:
    return int(result["context"]["slot"])


def _program_event(result: dict[str, Any]) -> AccountChanged | None:
    value = result["value"]
    key = Pubkey.from_string(value["pubkey"])
    account = parse_account(key, value["account"])
    return None if account is None else AccountChanged(account, _slot(result))


def _account_event(
    key: Pubkey, result: dict[str, Any], program_id: Pubkey
) -> ClockTick | AccountClosed | AccountChanged | None:
    account = parse_account(key, result["value"])
    slot = _slot(result)
    if key == CLOCK_SYSVAR:
        return None if account is None else ClockTick(decode_clock(account.data))
    if account is None or account.lamports == 0 or account.owner != program_id:
        return AccountClosed(key, slot)
    return AccountChanged(account, slot)
