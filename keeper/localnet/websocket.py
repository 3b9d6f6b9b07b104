"""The local chain's websocket endpoint: Solana's pubsub API on the RPC's own port.

``GET /`` with an upgrade opens a socket (``ws://host:port/`` beside ``http://host:port``;
solana-test-validator serves it on port + 1, providers on the same host and port, so a
keeper derives it from the RPC URL). Only the subscribe/unsubscribe methods of
``keeper.localnet.pubsub`` are served, one JSON-RPC request per text message, as Agave's
pubsub does; anything else answers -32601. Pings are answered by hand (not aiohttp's
autoping) so a stalled socket can stop answering them.

Faults (``keeper.localnet.faults``): ``ws_refuse`` answers an upgrade HTTP 503;
``ws_drop`` loses a notification; ``ws_stall`` makes a socket silent for good (no answers,
notifications or pongs; the TCP connection stays open); ``ws_close`` closes a socket
(code 1011) in place of a message. A client that does not read is cut off once
``MAX_QUEUED_MESSAGES`` wait, as real nodes cut slow subscribers.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Final

from aiohttp import WSCloseCode, WSMsgType, web

from keeper.localnet.pubsub import KINDS, UNSUBSCRIBE
from keeper.localnet.rpc_params import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    Params,
    RpcMethodError,
)

if TYPE_CHECKING:
    from keeper.localnet.node import Node

_LOG: Final = logging.getLogger(__name__)
MAX_QUEUED_MESSAGES: Final = 100_000
_CLOSE: Final = object()  # queued in place of a message: close the socket
_REFUSED_TEXT: Final = "Service Unavailable (localnet fault: websocket refused)"


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


class Connection:
    """One open socket: its subscriptions' sink, its queue of outgoing messages."""

    def __init__(self, ws: web.WebSocketResponse, node: Node) -> None:
        self.ws = ws
        self.node = node
        self.stalled = False
        self.closing = False
        self._queue: asyncio.Queue[tuple[str, str | None] | object] = asyncio.Queue()

    # -- outgoing -------------------------------------------------------------------------

    def notify(self, method: str, text: str) -> None:
        """A subscription's notification (``keeper.localnet.pubsub.Sink``)."""
        if self.stalled or self.closing:
            return
        if self.node.faults.drops_notification():
            return
        self._enqueue(text, method)

    def _answer(self, value: dict[str, object]) -> None:
        if not self.stalled and not self.closing:
            self._enqueue(_dumps({"jsonrpc": "2.0", **value}), None)

    def _enqueue(self, text: str, notification: str | None) -> None:
        faults = self.node.faults
        if faults.stalls_socket():
            self.stalled = True
            return
        if faults.closes_socket() or self._queue.qsize() >= MAX_QUEUED_MESSAGES:
            self.close()
            return
        self._queue.put_nowait((text, notification))

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            self._queue.put_nowait(_CLOSE)

    async def write(self) -> None:
        """Send queued messages in order until closed."""
        while True:
            item = await self._queue.get()
            if item is _CLOSE:
                await self.ws.close(code=WSCloseCode.INTERNAL_ERROR, message=b"localnet fault")
                return
            text, notification = item  # type: ignore[misc]
            if self.stalled:
                continue
            await self.ws.send_str(text)
            if notification is not None:
                self.node.stats.notified(notification, len(text))

    # -- incoming -------------------------------------------------------------------------

    async def read(self) -> None:
        async for message in self.ws:
            if message.type == WSMsgType.TEXT:
                self._handle(message.data)
            elif message.type == WSMsgType.PING and not self.stalled:
                await self.ws.pong(message.data)
            elif message.type in {WSMsgType.CLOSE, WSMsgType.ERROR}:
                return

    def _handle(self, text: str) -> None:
        if self.stalled:
            return  # a hung node reads nothing and answers nothing
        try:
            call = json.loads(text)
        except ValueError:
            self._error(None, RpcMethodError(PARSE_ERROR, "Parse error"))
            return
        if not isinstance(call, dict) or call.get("jsonrpc") != "2.0":
            request_id = call.get("id") if isinstance(call, dict) else None
            self._error(request_id, RpcMethodError(INVALID_REQUEST, "Invalid request"))
            return
        request_id, method = call.get("id"), call.get("method")
        try:
            result = self._dispatch(method, call.get("params"))
        except RpcMethodError as error:
            self._error(request_id, error)
        except Exception as error:  # noqa: BLE001 - an answer, never a dead socket: a bug shows as -32603
            _LOG.exception("localnet websocket: %s failed", method)
            self._error(request_id, RpcMethodError(INTERNAL_ERROR, f"Internal error: {error}"))
        else:
            self._answer({"result": result, "id": request_id})

    def _dispatch(self, method: object, params: object) -> object:
        pubsub = self.node.pubsub
        if isinstance(method, str) and method in KINDS:
            self.node.stats.calls[method] += 1
            return pubsub.subscribe(self, method, Params(params))
        if isinstance(method, str) and method in UNSUBSCRIBE:
            self.node.stats.calls[method] += 1
            return pubsub.unsubscribe(self, method, Params(params))
        raise RpcMethodError(METHOD_NOT_FOUND, "Method not found")

    def _error(self, request_id: object, error: RpcMethodError) -> None:
        self._answer({"error": error.to_json(), "id": request_id})


class WebsocketEndpoint:
    """Upgrades ``GET /`` to a pubsub socket; closes every socket at shutdown."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.connections: set[Connection] = set()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=False)
        if not ws.can_prepare(request).ok:
            raise web.HTTPMethodNotAllowed(request.method, ["POST"])
        if self.node.faults.refuses_websocket():
            return web.Response(status=503, text=_REFUSED_TEXT)
        await ws.prepare(request)
        connection = Connection(ws, self.node)
        self.connections.add(connection)
        stats = self.node.stats
        stats.websocket_connections += 1
        stats.websocket_open += 1
        writer = asyncio.create_task(connection.write())
        try:
            reader = asyncio.create_task(connection.read())
            await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
            reader.cancel()
            writer.cancel()
            # A peer gone mid-send ends a task with an error: the socket is over either way.
            await asyncio.gather(reader, writer, return_exceptions=True)
        finally:
            self.node.pubsub.drop(connection)
            self.connections.discard(connection)
            stats.websocket_open -= 1
            if not ws.closed:
                await ws.close()
        return ws

    async def close_all(self, _app: web.Application) -> None:
        for connection in list(self.connections):
            await connection.ws.close(code=WSCloseCode.GOING_AWAY, message=b"shutdown")
