"""Several endpoints behind one client: ordered failover, health, send fan-out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from fake_rpc import FakeRpc, Hang, Http, RpcFailure, SleepRecorder

from keeper.chain.endpoints import FailoverRpc, Role
from keeper.chain.rpc import RpcCallError, RpcClient
from keeper.errors import RpcServerError


class Health:
    def __init__(self) -> None:
        self.seen: list[tuple[Role, int, bool]] = []

    def endpoint_health(self, role: Role, index: int, *, up: bool) -> None:
        self.seen.append((role, index, up))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def nodes() -> AsyncIterator[list[FakeRpc]]:
    fakes, servers = [], []
    for _ in range(3):
        fake = FakeRpc()
        app = web.Application()
        app.router.add_post("/{tail:.*}", fake.handle)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        fake.url = str(server.make_url("/"))
        fakes.append(fake)
        servers.append(server)
    try:
        yield fakes
    finally:
        for server in servers:
            await server.close()


def _client(fake: FakeRpc) -> RpcClient:
    return RpcClient(fake.url, max_retries=1, requests_per_second=1e3, sleep=SleepRecorder())


def _failover(
    reads: list[FakeRpc], sends: list[FakeRpc] = (), **kwargs: object
) -> tuple[FailoverRpc, Health]:
    health = Health()
    rpc = FailoverRpc(
        [_client(f) for f in reads],
        sends=[_client(f) for f in sends],
        observer=health,
        **kwargs,  # type: ignore[arg-type]
    )
    return rpc, health


async def test_reads_go_to_the_first_endpoint(nodes: list[FakeRpc]) -> None:
    first, second, _ = nodes
    first.on("getSlot", lambda _p: 1)
    second.on("getSlot", lambda _p: 2)
    rpc, health = _failover([first, second])
    async with rpc:
        assert await rpc.call("getSlot") == 1
    assert second.count("getSlot") == 0
    assert health.seen == [(Role.READ, 0, True)]


async def test_a_failing_endpoint_fails_over_and_sits_out(nodes: list[FakeRpc]) -> None:
    first, second, _ = nodes
    first.on("getSlot", lambda _p: 1)
    first.queue("getSlot", Http(503), Http(503))  # both attempts (max_retries 1)
    second.on("getSlot", lambda _p: 2)
    clock = Clock()
    rpc, health = _failover([first, second], cooldown_s=30.0, monotonic=clock)
    async with rpc:
        assert await rpc.call("getSlot") == 2
        assert health.seen == [(Role.READ, 0, False), (Role.READ, 1, True)]
        assert rpc.redacted_url == rpc.reads[1].client.redacted_url
        assert await rpc.call("getSlot") == 2  # the first sits out: not even asked
        assert first.count("getSlot") == 2
        clock.now = 31.0
        assert await rpc.call("getSlot") == 1  # back in front once its cooldown is over
    assert health.seen[-1] == (Role.READ, 0, True)


async def test_a_json_rpc_error_is_an_answer_not_a_failover(nodes: list[FakeRpc]) -> None:
    first, second, _ = nodes
    first.queue("getSlot", RpcFailure(-32602, "invalid params"))
    second.on("getSlot", lambda _p: 2)
    rpc, health = _failover([first, second])
    async with rpc:
        with pytest.raises(RpcCallError):
            await rpc.call("getSlot")
    assert second.count("getSlot") == 0
    assert health.seen == [(Role.READ, 0, True)]


async def test_when_every_endpoint_fails_the_last_error_is_raised(nodes: list[FakeRpc]) -> None:
    first, second, _ = nodes
    for fake in (first, second):
        fake.queue("getSlot", Http(500), Http(500))
    rpc, _health = _failover([first, second])
    async with rpc:
        with pytest.raises(RpcServerError):
            await rpc.call("getSlot")
        # Both sit out now, yet both stay the last resort.
        first.on("getSlot", lambda _p: 1)
        assert await rpc.call("getSlot") == 1


async def test_a_stream_opens_on_the_next_endpoint(nodes: list[FakeRpc]) -> None:
    first, second, _ = nodes
    first.queue("getProgramAccounts", Http(502), Http(502))
    second.on("getProgramAccounts", lambda _p: [])
    rpc, health = _failover([first, second])
    async with rpc, rpc.stream("getProgramAccounts", ["x"]) as body:
        data = b"".join([chunk async for chunk in body])
    assert b'"result":[]' in data.replace(b" ", b"")
    assert (Role.READ, 0, False) in health.seen
    assert health.seen[-1] == (Role.READ, 1, True)


async def test_a_send_reaches_the_read_endpoint_and_every_send_endpoint(
    nodes: list[FakeRpc],
) -> None:
    read, send_a, send_b = nodes
    for fake in nodes:
        fake.on("sendTransaction", lambda params: "sig")
    rpc, _health = _failover([read], [send_a, send_b])
    async with rpc:
        assert await rpc.call("sendTransaction", ["AQID", {}]) == "sig"
        await asyncio.sleep(0.2)  # the slower copies finish in the background
    assert [f.params("sendTransaction") for f in nodes] == [[["AQID", {}]]] * 3


async def test_one_acceptance_is_enough(nodes: list[FakeRpc]) -> None:
    read, send_a, _ = nodes
    read.queue("sendTransaction", Http(503), Http(503))
    send_a.on("sendTransaction", lambda params: "sig")
    rpc, health = _failover([read], [send_a])
    async with rpc:
        assert await rpc.call("sendTransaction", ["AQID", {}]) == "sig"
    assert (Role.SEND, 0, True) in health.seen


async def test_a_slow_send_endpoint_does_not_hold_the_answer(nodes: list[FakeRpc]) -> None:
    read, send_a, _ = nodes
    read.on("sendTransaction", lambda params: "sig")
    send_a.queue("sendTransaction", Hang(30))
    rpc, _health = _failover([read], [send_a])
    async with rpc:  # closing cancels the copy still in flight
        async with asyncio.timeout(10):
            assert await rpc.call("sendTransaction", ["AQID", {}]) == "sig"


async def test_when_no_endpoint_accepts_the_nodes_refusal_is_raised(
    nodes: list[FakeRpc],
) -> None:
    read, send_a, _ = nodes
    read.queue("sendTransaction", Http(503), Http(503))
    send_a.queue("sendTransaction", RpcFailure(-32002, "Blockhash not found"))
    rpc, _health = _failover([read], [send_a])
    async with rpc:
        with pytest.raises(RpcCallError, match="Blockhash not found"):
            await rpc.call("sendTransaction", ["AQID", {}])


async def test_without_send_endpoints_a_send_is_a_plain_read_call(nodes: list[FakeRpc]) -> None:
    first, second, _ = nodes
    first.queue("sendTransaction", Http(503), Http(503))
    second.on("sendTransaction", lambda params: "sig")
    rpc, _health = _failover([first, second])
    async with rpc:
        assert await rpc.call("sendTransaction", ["AQID", {}]) == "sig"


def test_at_least_one_read_endpoint() -> None:
    with pytest.raises(ValueError, match="read endpoint"):
        FailoverRpc([])
