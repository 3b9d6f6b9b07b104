"""The transport: retries, Retry-After, typed errors, the rate limit, per-method outcomes."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from fake_rpc import FakeRpc, Hang, Http, RpcFailure, SleepRecorder, Trickle

from keeper.chain.rpc import (
    NotJsonRpc,
    RpcCallError,
    RpcClient,
    RpcOutcome,
    RpcUnreachable,
    limiter_for,
    parse_retry_after,
)
from keeper.errors import (
    RpcError,
    RpcRateLimited,
    RpcResponseError,
    RpcServerError,
    RpcTimeout,
)


class Outcomes:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def request_done(self, method: str, outcome: str, seconds: float) -> None:
        assert seconds >= 0
        self.seen.append((method, outcome))


def client(fake: FakeRpc, sleeps: SleepRecorder, **kwargs: object) -> RpcClient:
    options: dict[str, object] = {"timeout_s": 5.0, "max_retries": 3, "requests_per_second": 1e3}
    options.update(kwargs)
    return RpcClient(fake.url, sleep=sleeps, **options)  # type: ignore[arg-type]


async def test_a_call_returns_the_result(fake: FakeRpc, rpc: RpcClient) -> None:
    fake.on("getSlot", lambda params: 42)
    assert await rpc.call("getSlot", [{"commitment": "confirmed"}]) == 42
    assert fake.params("getSlot") == [[{"commitment": "confirmed"}]]


async def test_429_waits_exactly_the_retry_after_the_node_asks_for(
    fake: FakeRpc, sleeps: SleepRecorder
) -> None:
    fake.on("getSlot", lambda params: 7)
    fake.queue(
        "getSlot",
        Http(429, headers={"Retry-After": "3"}),
        Http(429, headers={"Retry-After": "1.5"}),
    )
    outcomes = Outcomes()
    async with client(fake, sleeps, observer=outcomes) as rpc:
        assert await rpc.call("getSlot") == 7
    assert fake.count("getSlot") == 3
    assert sleeps.delays == [3.0, 1.5]
    assert outcomes.seen == [
        ("getSlot", "rate_limited"),
        ("getSlot", "rate_limited"),
        ("getSlot", "ok"),
    ]


async def test_a_huge_retry_after_is_capped(fake: FakeRpc, sleeps: SleepRecorder) -> None:
    fake.on("getSlot", lambda params: 7)
    fake.queue("getSlot", Http(429, headers={"Retry-After": "3600"}))
    async with client(fake, sleeps, max_retry_after_s=20.0) as rpc:
        await rpc.call("getSlot")
    assert sleeps.delays == [20.0]


async def test_429_without_retry_after_backs_off_with_jitter(
    fake: FakeRpc, sleeps: SleepRecorder
) -> None:
    fake.on("getSlot", lambda params: 7)
    fake.queue("getSlot", *[Http(429)] * 3)
    async with client(fake, sleeps, backoff_base_s=0.5, backoff_max_s=4.0) as rpc:
        await rpc.call("getSlot")
    assert len(sleeps.delays) == 3
    # full jitter: each wait is within [0, min(max, base * 2**attempt)]
    for attempt, delay in enumerate(sleeps.delays, start=1):
        assert 0 <= delay <= min(4.0, 0.5 * 2**attempt)


async def test_5xx_is_retried_then_succeeds(fake: FakeRpc, sleeps: SleepRecorder) -> None:
    fake.on("getBlockHeight", lambda params: 100)
    fake.queue("getBlockHeight", Http(502), Http(503))
    outcomes = Outcomes()
    async with client(fake, sleeps, observer=outcomes) as rpc:
        assert await rpc.call("getBlockHeight") == 100
    assert fake.count("getBlockHeight") == 3
    assert [o for _, o in outcomes.seen] == ["server_error", "server_error", "ok"]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_the_5xx_a_busy_node_sends_is_retried(
    fake: FakeRpc, sleeps: SleepRecorder, status: int
) -> None:
    fake.on("getSlot", lambda params: 3)
    fake.queue("getSlot", Http(status))
    async with client(fake, sleeps) as rpc:
        assert await rpc.call("getSlot") == 3
    assert fake.count("getSlot") == 2


@pytest.mark.parametrize("status", [404, 405, 501, 505])
async def test_a_server_that_is_not_a_json_rpc_node_fails_at_once(
    fake: FakeRpc, sleeps: SleepRecorder, status: int
) -> None:
    fake.queue("getSlot", Http(status, body=b"<html><h1>Not Implemented</h1></html>"))
    async with client(fake, sleeps) as rpc:
        with pytest.raises(NotJsonRpc, match=f"HTTP {status}"):
            await rpc.call("getSlot")
    assert fake.count("getSlot") == 1
    assert sleeps.delays == []


async def test_a_json_answer_that_is_not_json_rpc_fails_at_once(
    fake: FakeRpc, rpc: RpcClient
) -> None:
    fake.queue("getSlot", Http(200, body=b'{"status": "ok"}'))
    with pytest.raises(NotJsonRpc, match="without a JSON-RPC result"):
        await rpc.call("getSlot")
    assert fake.count("getSlot") == 1


async def test_a_trickling_call_ends_at_its_total_deadline(
    fake: FakeRpc, sleeps: SleepRecorder
) -> None:
    # Every byte arrives well within the per-read timeout; only a total deadline ends it.
    fake.queue("getSlot", Trickle(b'{"jsonrpc":"2.0","id":1,"result":42}', every_s=0.05))
    outcomes = Outcomes()
    options = {"timeout_s": 5.0, "call_deadline_s": 0.3, "max_retries": 0, "observer": outcomes}
    async with client(fake, sleeps, **options) as rpc:
        with pytest.raises(RpcTimeout, match=r"rpc\.call_deadline_seconds") as caught:
            await rpc.call("getSlot")
    assert "call_deadline_seconds" in caught.value.hint
    assert outcomes.seen == [("getSlot", "timeout")]


async def test_a_trickling_scan_ends_at_its_total_deadline(
    fake: FakeRpc, sleeps: SleepRecorder
) -> None:
    body = b'{"jsonrpc":"2.0","id":1,"result":[' + b" " * 200 + b"]}"
    fake.queue("getProgramAccounts", Trickle(body, every_s=0.02))
    outcomes = Outcomes()
    options = {"timeout_s": 5.0, "scan_deadline_s": 0.5, "observer": outcomes}
    received = bytearray()

    async def read_all(rpc: RpcClient) -> None:
        async with rpc.stream("getProgramAccounts", []) as chunks:
            async for chunk in chunks:
                received.extend(chunk)

    async with client(fake, sleeps, **options) as rpc:
        with pytest.raises(RpcTimeout, match=r"rpc\.scan_deadline_seconds"):
            await read_all(rpc)
    assert 0 < len(received) < len(body)  # it was flowing, and it was cut
    assert outcomes.seen == [("getProgramAccounts", "timeout")]


async def test_exhausted_retries_raise_the_typed_error(
    fake: FakeRpc, sleeps: SleepRecorder
) -> None:
    fake.queue("getSlot", *[Http(500)] * 10)
    async with client(fake, sleeps, max_retries=2) as rpc:
        with pytest.raises(RpcServerError, match="HTTP 500"):
            await rpc.call("getSlot")
    assert fake.count("getSlot") == 3
    assert len(sleeps.delays) == 2


async def test_exhausted_429_keeps_retry_after(fake: FakeRpc, sleeps: SleepRecorder) -> None:
    fake.queue("getSlot", *[Http(429, headers={"Retry-After": "2"})] * 5)
    async with client(fake, sleeps, max_retries=1) as rpc:
        with pytest.raises(RpcRateLimited) as caught:
            await rpc.call("getSlot")
    assert caught.value.retry_after == 2.0


async def test_a_timeout_is_rpc_timeout(fake: FakeRpc, sleeps: SleepRecorder) -> None:
    fake.queue("getSlot", Hang(5), Hang(5))
    outcomes = Outcomes()
    async with client(fake, sleeps, timeout_s=0.05, max_retries=1, observer=outcomes) as rpc:
        with pytest.raises(RpcTimeout) as caught:
            await rpc.call("getSlot")
    assert fake.count("getSlot") == 2
    assert outcomes.seen == [("getSlot", "timeout"), ("getSlot", "timeout")]
    assert caught.value.__cause__ is not None  # the httpx exception, chained


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_a_refused_connection_is_unreachable_and_retried(sleeps: SleepRecorder) -> None:
    async with RpcClient(f"http://127.0.0.1:{closed_port()}/", max_retries=2, sleep=sleeps) as rpc:
        with pytest.raises(RpcUnreachable) as caught:
            await rpc.call("getSlot")
    assert isinstance(caught.value, RpcError)
    assert len(sleeps.delays) == 2


async def test_a_json_rpc_error_is_not_retried(fake: FakeRpc, rpc: RpcClient) -> None:
    fake.queue("getSlot", RpcFailure(-32602, "Invalid params", data={"why": "x"}))
    with pytest.raises(RpcCallError) as caught:
        await rpc.call("getSlot")
    assert caught.value.code == -32602
    assert caught.value.data == {"why": "x"}
    assert isinstance(caught.value, RpcResponseError)
    assert fake.count("getSlot") == 1


async def test_a_json_rpc_rate_limit_code_is_retried(fake: FakeRpc, rpc: RpcClient) -> None:
    fake.on("getSlot", lambda params: 1)
    fake.queue("getSlot", RpcFailure(-32429, "rate limited"))
    assert await rpc.call("getSlot") == 1
    assert fake.count("getSlot") == 2


async def test_a_body_that_is_not_json_is_a_response_error(fake: FakeRpc, rpc: RpcClient) -> None:
    fake.queue("getSlot", Http(200, body=b"<html>gateway</html>"))
    with pytest.raises(RpcResponseError, match="not JSON"):
        await rpc.call("getSlot")


async def test_a_4xx_is_not_retried(fake: FakeRpc, rpc: RpcClient) -> None:
    fake.queue("getSlot", Http(401, body=b"{}"))
    with pytest.raises(RpcResponseError, match="HTTP 401"):
        await rpc.call("getSlot")
    assert fake.count("getSlot") == 1


async def test_errors_never_carry_the_api_key(fake: FakeRpc, sleeps: SleepRecorder) -> None:
    fake.queue("getSlot", Http(500), Http(500))
    url = fake.url + "v2/abcdef0123456789abcdef0123456789?api-key=SECRET"
    async with RpcClient(url, max_retries=1, sleep=sleeps) as rpc:
        with pytest.raises(RpcServerError) as caught:
            await rpc.call("getSlot")
    assert "SECRET" not in str(caught.value)
    assert "abcdef0123456789" not in str(caught.value)
    assert "/v2/***" in str(caught.value)


async def test_the_rate_limiter_holds_back_a_request_over_the_rate(
    fake: FakeRpc, sleeps: SleepRecorder
) -> None:
    fake.on("getSlot", lambda params: 1)
    # 0.01 per second: one request, then the next is due in 100 s.
    async with client(fake, sleeps, requests_per_second=0.01) as rpc:
        await rpc.call("getSlot")
        assert not rpc.limiter.has_capacity()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(rpc.call("getSlot"), timeout=0.2)
    assert fake.count("getSlot") == 1


async def test_every_retry_passes_the_rate_limiter(fake: FakeRpc, sleeps: SleepRecorder) -> None:
    fake.on("getSlot", lambda params: 1)
    fake.queue("getSlot", Http(503))
    async with client(fake, sleeps, requests_per_second=2.0) as rpc:
        await rpc.call("getSlot")
        # two requests out of a bucket of two: none left for this second
        assert not rpc.limiter.has_capacity()


@pytest.mark.parametrize(
    ("rate", "max_rate", "period"), [(20.0, 20.0, 1.0), (1.0, 1.0, 1.0), (0.5, 1, 2.0)]
)
def test_limiter_shapes(rate: float, max_rate: float, period: float) -> None:
    limiter = limiter_for(rate)
    assert (limiter.max_rate, limiter.time_period) == (max_rate, period)


def test_limiter_rejects_a_non_positive_rate() -> None:
    with pytest.raises(ValueError, match="positive"):
        limiter_for(0)


def test_retry_after_parsing() -> None:
    assert parse_retry_after(None) is None
    assert parse_retry_after("4") == 4.0
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("soon") is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    waited = parse_retry_after(later)
    assert waited is not None
    assert 60 < waited <= 120


def test_outcome_labels_are_the_documented_ones() -> None:
    assert {o.value for o in RpcOutcome} == {
        "ok",
        "rate_limited",
        "server_error",
        "timeout",
        "connection_error",
        "rpc_error",
    }
