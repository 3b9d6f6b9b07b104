"""A small JSON-RPC websocket client for the local chain's pubsub tests (aiohttp's client).

Answers and notifications share one socket; ``call`` keeps the notifications it reads past
for ``notification`` to return in order. ``until_slot`` reads notifications up to the
slotNotification of a slot: everything the node sends for a slot comes before that slot's
slotNotification, so what did not arrive by then was not sent (no waiting on timers).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from typing import TYPE_CHECKING

import aiohttp

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

# A guard against a hung test, never a measured time.
HANG_GUARD_SECONDS = 10.0


class Socket:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self._next_id = 0
        self._pending: deque[dict] = deque()

    async def send(self, method: str, params: list | None = None) -> int:
        self._next_id += 1
        body = {"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params or []}
        await self.ws.send_str(json.dumps(body))
        return self._next_id

    async def receive(self) -> dict:
        message = await asyncio.wait_for(self.ws.receive(), HANG_GUARD_SECONDS)
        if message.type != aiohttp.WSMsgType.TEXT:
            raise ConnectionError(f"socket ended: {message.type!r} {message.data!r}")
        return json.loads(message.data)

    async def call(self, method: str, params: list | None = None) -> dict:
        """The whole answer object (result or error) of one request."""
        request_id = await self.send(method, params)
        while True:
            message = await self.receive()
            if message.get("id") == request_id and "method" not in message:
                return message
            self._pending.append(message)

    async def subscribe(self, method: str, params: list | None = None) -> int:
        answer = await self.call(method, params)
        assert "result" in answer, answer
        return answer["result"]

    async def notification(self) -> dict:
        if self._pending:
            return self._pending.popleft()
        return await self.receive()

    async def until_slot(self, slot: int) -> list[dict]:
        """Every notification before the slotNotification of ``slot`` (needs slotSubscribe)."""
        seen = []
        while True:
            message = await self.notification()
            if message["method"] == "slotNotification":
                if message["params"]["result"]["slot"] == slot:
                    return seen
                continue
            seen.append(message)


@contextlib.asynccontextmanager
async def connect(url: str, **options: object) -> AsyncIterator[Socket]:
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(url, **options) as ws,  # type: ignore[arg-type]
    ):
        yield Socket(ws)
