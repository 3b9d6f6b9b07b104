"""The HTTP JSON-RPC 2.0 server of the local chain (aiohttp, loopback).

Framing as real nodes do it: errors are HTTP 200 with a JSON-RPC error object; batches
answer in an array; notifications (no ``id``) get no answer. HTTP-level faults (latency,
429 with Retry-After, 5xx) are applied per HTTP request before any method runs, except
for requests made only of ``localnet_*`` control calls. ``GET /health`` answers ``ok``.
``GET /`` upgraded is the websocket pubsub endpoint (``keeper.localnet.websocket``).
Each call and the bytes of its answer are counted in ``Node.stats`` (control calls not).
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from typing import TYPE_CHECKING, Final

from aiohttp import web

from keeper.localnet.rpc_accounts import StreamedJson
from keeper.localnet.rpc_control import CONTROL_PREFIX
from keeper.localnet.rpc_methods import METHODS
from keeper.localnet.rpc_params import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    Params,
    RpcMethodError,
)
from keeper.localnet.websocket import WebsocketEndpoint

if TYPE_CHECKING:
    from collections.abc import Iterator

    from keeper.localnet.faults import HttpFault
    from keeper.localnet.node import Node

_LOG: Final = logging.getLogger(__name__)
_MAX_REQUEST_BYTES: Final = 10 * 1024 * 1024
_WRITE_BYTES: Final = 1 << 20
_RATE_LIMITED_MESSAGE: Final = "Too many requests for a specific RPC call"
_JSON: Final = "application/json"


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def _error_text(request_id: object, error: RpcMethodError) -> str:
    return _dumps({"jsonrpc": "2.0", "error": error.to_json(), "id": request_id})


def _is_control(payload: object) -> bool:
    calls = payload if isinstance(payload, list) else [payload]
    return bool(calls) and all(
        isinstance(call, dict) and str(call.get("method", "")).startswith(CONTROL_PREFIX)
        for call in calls
    )


class RpcServer:
    """Serves a ``Node`` over HTTP on ``host:port`` (port 0: any free port)."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.app = web.Application(client_max_size=_MAX_REQUEST_BYTES)
        self.websocket = WebsocketEndpoint(node)
        self.app.router.add_post("/", self._handle)
        self.app.router.add_get("/", self.websocket.handle)
        self.app.router.add_get("/health", self._health)
        self.app.on_shutdown.append(self.websocket.close_all)
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        await web.SockSite(self._runner, listener).start()
        self.url = f"http://{host}:{listener.getsockname()[1]}"
        return self.url

    @property
    def ws_url(self) -> str:
        """The websocket endpoint: the RPC URL with ``ws://`` (same host, port and path)."""
        return "ws" + self.url.removeprefix("http") + "/"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _health(self, _request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        try:
            payload = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError):
            error = RpcMethodError(PARSE_ERROR, "Parse error")
            return web.Response(text=_error_text(None, error), content_type=_JSON)
        if not _is_control(payload):
            self.node.stats.http_requests += 1
            faults = self.node.faults
            if faults.latency_seconds:
                await asyncio.sleep(faults.latency_seconds)
            fault = faults.http_fault()
            if fault is not None:
                return _fault_response(fault, payload)
        if isinstance(payload, list):
            return self._batch(payload)
        answer = self._call(payload)
        if answer is None:
            return web.Response(status=204)
        if isinstance(answer, StreamedJson):
            return await _stream(request, answer.chunks())
        return web.Response(text=answer, content_type=_JSON)

    def _batch(self, calls: list[object]) -> web.Response:
        if not calls:
            error = RpcMethodError(INVALID_REQUEST, "Invalid request")
            return web.Response(text=_error_text(None, error), content_type=_JSON)
        answers = []
        for call in calls:
            answer = self._call(call)
            if answer is not None:
                answers.append(answer.text() if isinstance(answer, StreamedJson) else answer)
        if not answers:
            return web.Response(status=204)
        return web.Response(text="[" + ",".join(answers) + "]", content_type=_JSON)

    def _call(self, call: object) -> str | StreamedJson | None:
        """One JSON-RPC call: its answer, or None for a notification."""
        if not isinstance(call, dict) or call.get("jsonrpc") != "2.0":
            request_id = call.get("id") if isinstance(call, dict) else None
            return _error_text(request_id, RpcMethodError(INVALID_REQUEST, "Invalid request"))
        request_id = call.get("id")
        method = call.get("method")
        if not isinstance(method, str):
            return _error_text(request_id, RpcMethodError(INVALID_REQUEST, "Invalid request"))
        try:
            result = self._dispatch(method, call.get("params"))
        except RpcMethodError as error:
            answer: str | StreamedJson = _error_text(request_id, error)
        else:
            answer = _result(request_id, result)
        if not method.startswith(CONTROL_PREFIX):
            answer = self._counted(method, answer)
        return answer if "id" in call else None

    def _counted(self, method: str, answer: str | StreamedJson) -> str | StreamedJson:
        """Count the call, and the bytes of its answer as they are produced."""
        stats = self.node.stats
        stats.calls[method] += 1
        if isinstance(answer, str):
            stats.response_bytes[method] += len(answer)
            return answer

        def chunks() -> Iterator[str]:
            for chunk in answer.chunks():
                stats.response_bytes[method] += len(chunk)
                yield chunk

        return StreamedJson(chunks())

    def _dispatch(self, method: str, params: object) -> object:
        handler = METHODS.get(method)
        if handler is None:
            raise RpcMethodError(METHOD_NOT_FOUND, "Method not found")
        try:
            return handler(self.node, Params(params))
        except RpcMethodError:
            raise
        except Exception as error:  # an answer, never a dead server: a bug shows as -32603
            _LOG.exception("localnet: %s failed", method)
            raise RpcMethodError(INTERNAL_ERROR, f"Internal error: {error}") from error


def _result(request_id: object, result: object) -> str | StreamedJson:
    tail = ',"id":' + _dumps(request_id) + "}"
    if isinstance(result, StreamedJson):
        return StreamedJson(_framed('{"jsonrpc":"2.0","result":', result.chunks(), tail))
    return '{"jsonrpc":"2.0","result":' + _dumps(result) + tail


def _framed(head: str, body: Iterator[str], tail: str) -> Iterator[str]:
    yield head
    yield from body
    yield tail


async def _stream(request: web.Request, chunks: Iterator[str]) -> web.StreamResponse:
    """Write a large answer in ~1 MB pieces, yielding to other requests in between."""
    response = web.StreamResponse(headers={"Content-Type": _JSON})
    response.enable_chunked_encoding()
    await response.prepare(request)
    pending: list[str] = []
    size = 0
    for chunk in chunks:
        pending.append(chunk)
        size += len(chunk)
        if size >= _WRITE_BYTES:
            await response.write("".join(pending).encode())
            pending, size = [], 0
    await response.write("".join(pending).encode())
    await response.write_eof()
    return response


def _fault_response(fault: HttpFault, payload: object) -> web.Response:
    if fault.retry_after_seconds is not None:
        request_id = payload.get("id") if isinstance(payload, dict) else None
        error = RpcMethodError(fault.status, _RATE_LIMITED_MESSAGE)
        return web.Response(
            status=fault.status,
            text=_error_text(request_id, error),
            content_type=_JSON,
            headers={"Retry-After": str(fault.retry_after_seconds)},
        )
    return web.Response(status=fault.status, text="Service Unavailable (localnet fault)")
