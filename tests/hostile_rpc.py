"""A hostile RPC: an HTTP proxy in front of the local chain that can delay, rewrite,
trickle, duplicate, hide or fail the answers to chosen JSON-RPC methods.

Tests put it between the keeper and the chain (``HostileRpc.run_in_thread(chain.url)``)
and change its rules while it runs (``proxy.set_rules(...)``). Every forwarded request is
recorded (``proxy.calls``), so a test can also assert what the keeper asked for.

Rules match by method name (``"*"`` matches every method) and optionally by a predicate on
the request; the first matching rule with uses left applies. Rewrites work on the parsed
JSON answer, so they read like the node's documented response shapes.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import copy
import json
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

Json = Any
Rewrite = Callable[[Json, Json], Json]  # (request, response) -> response
RequestMatch = Callable[[Json], bool]
_SESSION = web.AppKey("session", aiohttp.ClientSession)

CLOCK_SYSVAR = "SysvarC1ock11111111111111111111111111111111"
_CLOCK_UNIX_TIMESTAMP_OFFSET = 32  # slot, epoch_start_timestamp, epoch, leader_schedule_epoch


@dataclass
class Rule:
    """What to do to one method's answers. Unset fields leave that part alone."""

    method: str = "*"
    when: RequestMatch | None = None
    times: int | None = None  # uses left; None: every matching request
    delay_s: float = 0.0  # wait before forwarding (a stall before headers)
    status: int | None = None  # answer this HTTP status instead of forwarding
    body: bytes | None = None  # with ``status``: this body (default: a short text)
    error: Json = None  # answer this JSON-RPC error object instead of the result
    rewrite: Rewrite | None = None  # change the parsed answer
    trickle_every_s: float | None = None  # send the body one byte at a time, this often
    drop: bool = False  # close the connection without an answer

    def matches(self, request: Json) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        if self.method not in {"*", request.get("method")}:
            return False
        return self.when is None or bool(self.when(request))


@dataclass
class HostileRpc:
    """The proxy. ``url`` is what the keeper is pointed at."""

    upstream: str
    url: str = ""
    rules: list[Rule] = field(default_factory=list)
    calls: list[Json] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def set_rules(self, *rules: Rule) -> None:
        with self._lock:
            self.rules = list(rules)

    def clear(self) -> None:
        self.set_rules()

    def methods_called(self) -> list[str]:
        with self._lock:
            return [str(call.get("method")) for call in self.calls]

    def _rule_for(self, request: Json) -> Rule | None:
        with self._lock:
            self.calls.append(request)
            for rule in self.rules:
                if rule.matches(request):
                    if rule.times is not None:
                        rule.times -= 1
                    return rule
        return None

    # -- serving ------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = {}
        rule = self._rule_for(parsed if isinstance(parsed, dict) else {})
        if rule is not None and rule.delay_s:
            await asyncio.sleep(rule.delay_s)
        if rule is not None and rule.drop:
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)
        if rule is not None and rule.status is not None:
            return web.Response(status=rule.status, body=rule.body or b"hostile rpc says no")
        if rule is not None and rule.error is not None:
            answer = {"jsonrpc": "2.0", "id": parsed.get("id"), "error": rule.error}
            return await self._answer(request, json.dumps(answer).encode(), rule)
        session = request.app[_SESSION]
        async with session.post(
            self.upstream, data=raw, headers={"Content-Type": "application/json"}
        ) as upstream:
            body = await upstream.read()
            status = upstream.status
        if rule is not None and rule.rewrite is not None and status == 200:
            body = json.dumps(rule.rewrite(parsed, json.loads(body))).encode()
        if status != 200:
            return web.Response(status=status, body=body)
        return await self._answer(request, body, rule)

    async def _answer(
        self, request: web.Request, body: bytes, rule: Rule | None
    ) -> web.StreamResponse:
        if rule is None or rule.trickle_every_s is None:
            return web.Response(body=body, content_type="application/json")
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        for index in range(len(body)):
            await response.write(body[index : index + 1])
            await asyncio.sleep(rule.trickle_every_s)
        await response.write_eof()
        return response

    @classmethod
    @contextmanager
    def run_in_thread(cls, upstream: str) -> Iterator[HostileRpc]:
        """Serve on a free loopback port in a background thread until the block ends."""
        proxy = cls(upstream)
        started: concurrent.futures.Future[tuple[asyncio.AbstractEventLoop, asyncio.Event]]
        started = concurrent.futures.Future()

        async def serve() -> None:
            app = web.Application(client_max_size=64 * 1024**2)
            app.router.add_post("/{tail:.*}", proxy._handle)
            timeout = aiohttp.ClientTimeout(total=600)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                app[_SESSION] = session
                runner = web.AppRunner(app, shutdown_timeout=0.5)
                await runner.setup()
                site = web.TCPSite(runner, "127.0.0.1", 0)
                await site.start()
                server = site._server
                assert isinstance(server, asyncio.Server)
                port = server.sockets[0].getsockname()[1]
                proxy.url = f"http://127.0.0.1:{port}"
                stop = asyncio.Event()
                started.set_result((asyncio.get_running_loop(), stop))
                try:
                    await stop.wait()
                finally:
                    await runner.cleanup()

        async def guarded() -> None:
            try:
                await serve()
            except BaseException as error:
                if not started.done():
                    started.set_exception(error)
                raise

        thread = threading.Thread(target=asyncio.run, args=(guarded(),), name="hostile-rpc")
        thread.start()
        loop, stop = started.result(timeout=30)
        try:
            yield proxy
        finally:
            loop.call_soon_threadsafe(stop.set)
            thread.join(timeout=30)


# -- rewrites, by what they do to the answer ----------------------------------------------


def _params(request: Json) -> list[Json]:
    params = request.get("params") or []
    return params if isinstance(params, list) else []


def hide_accounts(*keys: str) -> Rewrite:
    """Answer as if ``keys`` did not exist: removed from getProgramAccounts (plain or
    ``{context, value}``), null in getMultipleAccounts and getAccountInfo."""
    hidden = set(keys)

    def rewrite(request: Json, response: Json) -> Json:
        result = copy.deepcopy(response.get("result"))
        method = request.get("method")
        if method == "getProgramAccounts":
            items = result["value"] if isinstance(result, dict) else result
            kept = [item for item in items if item["pubkey"] not in hidden]
            result = {**result, "value": kept} if isinstance(result, dict) else kept
        elif method == "getMultipleAccounts":
            asked = _params(request)[0]
            result["value"] = [
                None if key in hidden else value
                for key, value in zip(asked, result["value"], strict=True)
            ]
        elif method == "getAccountInfo" and _params(request)[0] in hidden:
            result["value"] = None
        return {**response, "result": result}

    return rewrite


def duplicate_first_account() -> Rewrite:
    """getProgramAccounts answers its first account twice."""

    def rewrite(_request: Json, response: Json) -> Json:
        result = copy.deepcopy(response.get("result"))
        items = result["value"] if isinstance(result, dict) else result
        if items:
            items.insert(0, copy.deepcopy(items[0]))
        return {**response, "result": result}

    return rewrite


def clock_ahead(seconds: int) -> Rewrite:
    """The Clock sysvar (getAccountInfo, getMultipleAccounts) and getBlockTime answer
    ``seconds`` later than the chain's real clock."""

    def shift(value: Json) -> Json:
        if value is None:
            return None
        data = bytearray(base64.b64decode(value["data"][0]))
        (now,) = struct.unpack_from("<q", data, _CLOCK_UNIX_TIMESTAMP_OFFSET)
        struct.pack_into("<q", data, _CLOCK_UNIX_TIMESTAMP_OFFSET, now + seconds)
        return {**value, "data": [base64.b64encode(bytes(data)).decode(), "base64"]}

    def rewrite(request: Json, response: Json) -> Json:
        result = copy.deepcopy(response.get("result"))
        method = request.get("method")
        params = _params(request)
        if method == "getAccountInfo" and params and params[0] == CLOCK_SYSVAR:
            result["value"] = shift(result["value"])
        elif method == "getMultipleAccounts" and params:
            result["value"] = [
                shift(value) if key == CLOCK_SYSVAR else value
                for key, value in zip(params[0], result["value"], strict=True)
            ]
        elif method == "getBlockTime" and isinstance(result, int):
            result += seconds
        return {**response, "result": result}

    return rewrite


def truncate_data(length: int) -> Rewrite:
    """getProgramAccounts answers every account's data cut (or padded) to ``length``
    bytes: what a node that ignores ``dataSlice`` or answers short data looks like."""

    def rewrite(_request: Json, response: Json) -> Json:
        result = copy.deepcopy(response.get("result"))
        items = result["value"] if isinstance(result, dict) else result
        for item in items:
            data = base64.b64decode(item["account"]["data"][0])
            data = data[:length].ljust(length, b"\0")
            item["account"]["data"] = [base64.b64encode(data).decode(), "base64"]
        return {**response, "result": result}

    return rewrite


def null_result() -> Rewrite:
    """Answers ``value`` entries as null (getSignatureStatuses: "not seen")."""

    def rewrite(_request: Json, response: Json) -> Json:
        result = copy.deepcopy(response.get("result"))
        if isinstance(result, dict) and isinstance(result.get("value"), list):
            result["value"] = [None for _ in result["value"]]
        return {**response, "result": result}

    return rewrite


def program_accounts_of(program: str) -> RequestMatch:
    """A ``when`` for getProgramAccounts of one program."""
    return lambda request: bool(_params(request)) and _params(request)[0] == program


def reads_account_data() -> RequestMatch:
    """A ``when`` for getProgramAccounts that asks for data: not a key-only read
    (``dataSlice`` of length 0, as the start-up check of the program's markets)."""

    def asks_data(request: Json) -> bool:
        params = _params(request)
        config = params[1] if len(params) > 1 and isinstance(params[1], dict) else {}
        data_slice = config.get("dataSlice")
        return not (isinstance(data_slice, dict) and data_slice.get("length") == 0)

    return asks_data


def confirmed_statuses() -> Rewrite:
    """getSignatureStatuses answers every signature it has not seen as landed and
    ``confirmed`` without error: a lie about transactions that never landed."""

    def fake(slot: int) -> Json:
        return {
            "slot": slot,
            "confirmations": 1,
            "err": None,
            "status": {"Ok": None},
            "confirmationStatus": "confirmed",
        }

    def rewrite(_request: Json, response: Json) -> Json:
        result = copy.deepcopy(response.get("result"))
        if isinstance(result, dict) and isinstance(result.get("value"), list):
            slot = result.get("context", {}).get("slot", 0)
            result["value"] = [fake(slot) if v is None else v for v in result["value"]]
        return {**response, "result": result}

    return rewrite
