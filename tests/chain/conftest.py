"""Fixtures: a fake JSON-RPC node over real HTTP, and an RpcClient pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from fake_rpc import FakeRpc, SleepRecorder

from keeper.chain.rpc import RpcClient


@pytest.fixture
async def fake() -> AsyncIterator[FakeRpc]:
    rpc = FakeRpc()
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/{tail:.*}", rpc.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    rpc.url = str(server.make_url("/"))
    try:
        yield rpc
    finally:
        await server.close()


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
async def rpc(fake: FakeRpc, sleeps: SleepRecorder) -> AsyncIterator[RpcClient]:
    client = RpcClient(
        fake.url, timeout_s=5.0, max_retries=3, requests_per_second=1000.0, sleep=sleeps
    )
    async with client:
        yield client
