"""A tiny JSON-RPC server (aiohttp) the chain layer talks to over real HTTP.

Each method answers through a handler ``params -> result``; one-shot replies queued with
``queue`` come first (HTTP errors, JSON-RPC errors, hangs, raw or streamed bodies).
Every request is recorded in ``calls``.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Http:
    """A bare HTTP answer (status, headers, body)."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class RpcFailure:
    """A JSON-RPC error object."""

    code: int
    message: str
    data: Any = None


@dataclass
class Hang:
    seconds: float


@dataclass
class Stream:
    """A body sent in pieces; ``sent`` counts the bytes written so far."""

    pieces: Iterable[bytes]
    sent: int = 0


@dataclass
class Trickle:
    """A body sent one byte every ``every_s`` seconds (headers at once)."""

    body: bytes
    every_s: float


Reply = Http | RpcFailure | Hang | Stream | Trickle | Any


class FakeRpc:
    def __init__(self) -> None:
        self.handlers: dict[str, Callable[[list[Any]], Any]] = {}
        self.queued: dict[str, deque[Reply]] = defaultdict(deque)
        self.calls: list[tuple[str, list[Any]]] = []
        self.url = ""

    def on(self, method: str, handler: Callable[[list[Any]], Any]) -> None:
        self.handlers[method] = handler

    def queue(self, method: str, *replies: Reply) -> None:
        self.queued[method].extend(replies)

    def count(self, method: str) -> int:
        return sum(1 for name, _ in self.calls if name == method)

    def params(self, method: str) -> list[list[Any]]:
        return [params for name, params in self.calls if name == method]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        method, params, ident = body["method"], body.get("params", []), body.get("id")
        self.calls.append((method, params))
        if self.queued[method]:
            reply = self.queued[method].popleft()
        elif method in self.handlers:
            try:
                reply = self.handlers[method](params)
            except RpcFailureError as failure:
                reply = failure.reply
        else:
            reply = RpcFailure(-32601, "Method not found")
        return await self._answer(request, ident, reply)

    async def _answer(self, request: web.Request, ident: Any, reply: Reply) -> web.StreamResponse:
        if isinstance(reply, Http):
            return web.Response(status=reply.status, body=reply.body, headers=reply.headers)
        if isinstance(reply, Hang):
            await asyncio.sleep(reply.seconds)
            return web.json_response({"jsonrpc": "2.0", "id": ident, "result": None})
        if isinstance(reply, RpcFailure):
            error = {"code": reply.code, "message": reply.message}
            if reply.data is not None:
                error["data"] = reply.data
            return web.json_response({"jsonrpc": "2.0", "id": ident, "error": error})
        if isinstance(reply, Trickle):
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            await response.prepare(request)
            for index in range(len(reply.body)):
                await response.write(reply.body[index : index + 1])
                await asyncio.sleep(reply.every_s)
            await response.write_eof()
            return response
        if isinstance(reply, Stream):
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            await response.prepare(request)
            for piece in reply.pieces:
                await response.write(piece)
                reply.sent += len(piece)
            await response.write_eof()
            return response
        return web.json_response({"jsonrpc": "2.0", "id": ident, "result": reply})


class RpcFailureError(Exception):
    """Raised by a handler to answer with a JSON-RPC error."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.reply = RpcFailure(code, message, data)


class SleepRecorder:
    """An injectable ``sleep`` that records the delays asked for and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
