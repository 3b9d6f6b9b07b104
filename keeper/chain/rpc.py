"""The JSON-RPC transport: one pooled httpx client, a rate limit, retries and typed errors.

Why httpx and not solana-py's ``AsyncClient`` for the wire: the scan must stream
(``AsyncClient`` reads whole bodies), 0.36's client has no ``getRecentPrioritizationFees``
and no ``replaceRecentBlockhash``, it wraps HTTP failures in ``SolanaRpcException`` (status
and Retry-After only on ``__cause__``) and logs the unredacted endpoint when it sends. So
every request goes through ``RpcClient`` (one retry policy, one rate limit, one per-method
observer), and solders — the library solana-py is built on — does everything byte-level:
keys, messages, transactions, signatures.

Retries (tenacity, jittered exponential backoff) cover HTTP 429 (waiting exactly the
Retry-After the node asks for, capped), the 5xx a node or its gateway sends when busy or
down (500, 502, 503, 504), timeouts and connection failures. A JSON-RPC error object is an
answer, not a fault: it raises ``RpcCallError`` at once. Any other status (404, 405, 501...)
or a body that is not a JSON-RPC answer raises ``NotJsonRpc`` at once: retrying a web
server that is not a Solana node only hides the mistake.

Every request has a total deadline besides httpx's per-read timeout, which a body sent a
byte at a time never trips: ``call_deadline_s`` for a call (small answers), and
``scan_deadline_s`` for a streamed scan from its request to its body's last byte (a scan of
a million accounts legitimately streams for tens of seconds). Over it: ``RpcTimeout``.
"""

from __future__ import annotations

import asyncio
import email.utils
import itertools
import json
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final, Protocol, Self

import httpx
import structlog
from aiolimiter import AsyncLimiter
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_random_exponential

from keeper.chain.redact import redact_url
from keeper.errors import (
    KeeperError,
    RpcError,
    RpcRateLimited,
    RpcResponseError,
    RpcServerError,
    RpcTimeout,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

log = structlog.get_logger("keeper.chain.rpc")

HTTP_OK: Final = 200
HTTP_TOO_MANY_REQUESTS: Final = 429
# The statuses a node or the gateway in front of it answers when busy or down: transient.
RETRYABLE_STATUSES: Final = frozenset({500, 502, 503, 504})
_AUTH_STATUSES: Final = frozenset({401, 403})
# JSON-RPC error codes some providers use for "slow down" and "node behind": transient.
_RATE_LIMIT_CODES: Final = frozenset({429, -32429})
_NODE_UNHEALTHY_CODES: Final = frozenset({-32005})


class RpcOutcome(StrEnum):
    """How one request ended: the ``outcome`` label of the per-method metrics."""

    OK = "ok"
    RATE_LIMITED = "rate_limited"
    SERVER_ERROR = "server_error"
    TIMEOUT = "timeout"
    CONNECTION_ERROR = "connection_error"
    RPC_ERROR = "rpc_error"


class RpcObserver(Protocol):
    """Told about every HTTP request (each retry attempt counts). Wired to metrics."""

    def request_done(self, method: str, outcome: str, seconds: float) -> None: ...


class NullRpcObserver:
    def request_done(self, method: str, outcome: str, seconds: float) -> None:
        pass


class RpcUnreachable(RpcError):
    """The connection failed (refused, reset, DNS). Retried like a 5xx."""


class RpcCallError(RpcResponseError):
    """The node answered with a JSON-RPC error object; ``data`` is its ``data`` member."""

    def __init__(self, message: str, *, code: int | None = None, data: object = None) -> None:
        super().__init__(message, code=code)
        self.data = data


class NotJsonRpc(RpcResponseError):
    """The server answered, but not as a JSON-RPC node (HTTP 404/405/501, HTML...)."""

    hint = (
        "point rpc.url (KEEPER_RPC_URL or --rpc-url) at a Solana JSON-RPC endpoint, "
        "e.g. https://api.mainnet-beta.solana.com or your provider's RPC URL"
    )


RETRYABLE: Final = (RpcRateLimited, RpcServerError, RpcTimeout, RpcUnreachable)


def outcome_of(error: BaseException) -> RpcOutcome:
    """The metric outcome for an error raised by this module."""
    for kind, outcome in (
        (RpcRateLimited, RpcOutcome.RATE_LIMITED),
        (RpcServerError, RpcOutcome.SERVER_ERROR),
        (RpcTimeout, RpcOutcome.TIMEOUT),
        (RpcUnreachable, RpcOutcome.CONNECTION_ERROR),
    ):
        if isinstance(error, kind):
            return outcome
    return RpcOutcome.RPC_ERROR


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date; None if absent."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    # Not a decision: how long the node asked us to wait, against our own clock.
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def limiter_for(requests_per_second: float) -> AsyncLimiter:
    """A leaky bucket allowing ``requests_per_second`` on average, burst of one second."""
    if requests_per_second <= 0:
        raise ValueError("requests_per_second must be positive")
    if requests_per_second >= 1:
        return AsyncLimiter(requests_per_second, 1.0)
    return AsyncLimiter(1, 1.0 / requests_per_second)


class _BackoffOrRetryAfter:
    """Tenacity wait: the node's Retry-After when it gave one, else full-jitter backoff."""

    def __init__(self, base_s: float, max_s: float, max_retry_after_s: float) -> None:
        self._jitter = wait_random_exponential(multiplier=base_s, max=max_s)
        self._max_retry_after_s = max_retry_after_s

    def __call__(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, RpcRateLimited) and error.retry_after is not None:
            return min(error.retry_after, self._max_retry_after_s)
        return float(self._jitter(state))


class RpcClient:
    """Async JSON-RPC client. Use as ``async with RpcClient(url, ...) as rpc``."""

    def __init__(  # noqa: PLR0913 - every knob is a setting, named at the call site
        self,
        url: str,
        *,
        timeout_s: float = 30.0,
        call_deadline_s: float = 60.0,
        scan_deadline_s: float = 300.0,
        max_retries: int = 5,
        requests_per_second: float = 20.0,
        observer: RpcObserver | None = None,
        backoff_base_s: float = 0.25,
        backoff_max_s: float = 10.0,
        max_retry_after_s: float = 60.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        transport: httpx.AsyncBaseTransport | None = None,
        on_bytes: Callable[[str, int], None] | None = None,
    ) -> None:
        self._url = url
        self._on_bytes = on_bytes  # response body bytes by method (metrics)
        self.redacted_url = redact_url(url)
        self.timeout_s = timeout_s
        self.call_deadline_s = call_deadline_s
        self.scan_deadline_s = scan_deadline_s
        self.max_retries = max_retries
        self.limiter = limiter_for(requests_per_second)
        self._observer: RpcObserver = observer or NullRpcObserver()
        self._wait = _BackoffOrRetryAfter(backoff_base_s, backoff_max_s, max_retry_after_s)
        self._sleep = sleep
        self._ids = itertools.count(1)
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            transport=transport,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- requests ---------------------------------------------------------------------

    async def call(self, method: str, params: Sequence[Any] = ()) -> Any:  # noqa: ANN401 - JSON
        """``method(params)``; returns the JSON ``result``. Retries transient failures."""
        body = self._body(method, params)

        async def attempt() -> Any:  # noqa: ANN401 - JSON
            async with self.limiter:
                started = asyncio.get_running_loop().time()
                try:
                    async with asyncio.timeout(self.call_deadline_s):
                        response = await self._http.post(self._url, content=body)
                    self._count_bytes(method, len(response.content))
                    result = self._result(method, response)
                except KeeperError as error:
                    self._observe(method, outcome_of(error), started)
                    raise
                except httpx.HTTPError as error:
                    mapped = self._transport_error(method, error)
                    self._observe(method, outcome_of(mapped), started)
                    raise mapped from error
                except TimeoutError as error:
                    late = self._deadline_error(method, self.call_deadline_s, "call")
                    self._observe(method, outcome_of(late), started)
                    raise late from error
                self._observe(method, RpcOutcome.OK, started)
                return result

        return await self._retrying(method)(attempt)

    @asynccontextmanager
    async def stream(
        self, method: str, params: Sequence[Any] = (), *, read_timeout_s: float | None = None
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        """The response body of ``method(params)`` as raw byte chunks, for incremental parsing.

        Retries apply to opening the request (up to the HTTP status). Once bytes flow, a
        failure is raised as a typed error and the caller restarts from scratch: a stream
        cannot resume where it broke. The observer sees one entry when the stream ends.
        The body must be complete within ``scan_deadline_s`` of the attempt that opened it.
        """
        body = self._body(method, params)
        timeout = httpx.Timeout(self.timeout_s, read=read_timeout_s or self.timeout_s)
        opened: tuple[httpx.Response, float] = await self._retrying(method)(
            self._open_stream, method, body, timeout
        )
        response, started = opened
        try:
            yield self._chunks(method, response, started + self.scan_deadline_s)
        except KeeperError as error:
            self._observe(method, outcome_of(error), started)
            raise
        else:
            self._observe(method, RpcOutcome.OK, started)
        finally:
            await response.aclose()

    # -- internals --------------------------------------------------------------------

    def _retrying(self, method: str) -> AsyncRetrying:
        def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            log.warning(
                "rpc retry",
                method=method,
                attempt=state.attempt_number,
                wait_s=round(state.upcoming_sleep, 3),
                error=str(error),
            )

        return AsyncRetrying(
            stop=stop_after_attempt(self.max_retries + 1),
            wait=self._wait,
            retry=retry_if_exception_type(RETRYABLE),
            sleep=self._sleep,
            before_sleep=before_sleep,
            reraise=True,
        )

    async def _open_stream(
        self, method: str, body: bytes, limits: httpx.Timeout
    ) -> tuple[httpx.Response, float]:
        """One attempt at opening the stream: the response and when the attempt began."""
        async with self.limiter:
            started = asyncio.get_running_loop().time()
            deadline = started + self.scan_deadline_s
            request = self._http.build_request("POST", self._url, content=body, timeout=limits)
            try:
                async with asyncio.timeout_at(deadline):
                    response = await self._http.send(request, stream=True)
            except httpx.HTTPError as error:
                mapped = self._transport_error(method, error)
                self._observe(method, outcome_of(mapped), started)
                raise mapped from error
            except TimeoutError as error:
                late = self._deadline_error(method, self.scan_deadline_s, "scan")
                self._observe(method, outcome_of(late), started)
                raise late from error
            if response.status_code == HTTP_OK:
                return response, started
            try:
                async with asyncio.timeout_at(deadline):
                    await response.aread()
                self._result(method, response)  # raises the typed error for this status
            except KeeperError as error:
                self._observe(method, outcome_of(error), started)
                raise
            except httpx.HTTPError as error:
                mapped = self._transport_error(method, error)
                self._observe(method, outcome_of(mapped), started)
                raise mapped from error
            except TimeoutError as error:
                late = self._deadline_error(method, self.scan_deadline_s, "scan")
                self._observe(method, outcome_of(late), started)
                raise late from error
            finally:
                await response.aclose()
            raise RpcResponseError(f"{method}: unexpected HTTP {response.status_code}")

    async def _chunks(
        self, method: str, response: httpx.Response, deadline: float
    ) -> AsyncIterator[bytes]:
        """The body's chunks; ``RpcTimeout`` once ``deadline`` (loop time) passes, however
        steadily bytes still trickle in."""
        chunks = response.aiter_bytes()
        try:
            while True:
                try:
                    async with asyncio.timeout_at(deadline):
                        chunk = await anext(chunks)
                except StopAsyncIteration:
                    return
                self._count_bytes(method, len(chunk))
                yield chunk
        except httpx.HTTPError as error:
            raise self._transport_error(method, error) from error
        except TimeoutError as error:
            raise self._deadline_error(method, self.scan_deadline_s, "scan") from error

    def _body(self, method: str, params: Sequence[Any]) -> bytes:
        request = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        return json.dumps(request, separators=(",", ":")).encode()

    def _count_bytes(self, method: str, count: int) -> None:
        if self._on_bytes is not None:
            self._on_bytes(method, count)

    def _observe(self, method: str, outcome: RpcOutcome, started: float) -> None:
        elapsed = asyncio.get_running_loop().time() - started
        self._observer.request_done(method, outcome.value, elapsed)

    def _transport_error(self, method: str, error: httpx.HTTPError) -> RpcError:
        where = f"{method} at {self.redacted_url}"
        if isinstance(error, httpx.TimeoutException):
            return RpcTimeout(
                f"{where}: no answer within {self.timeout_s} s ({type(error).__name__})"
            )
        if isinstance(error, httpx.UnsupportedProtocol):
            return RpcError(f"{where}: the URL's scheme is not http(s)")
        return RpcUnreachable(f"{where}: connection failed ({type(error).__name__})")

    def _deadline_error(self, method: str, seconds: float, kind: str) -> RpcTimeout:
        setting = "rpc.scan_deadline_seconds" if kind == "scan" else "rpc.call_deadline_seconds"
        return RpcTimeout(
            f"{method} at {self.redacted_url}: the answer was not complete within "
            f"{seconds} s ({setting})",
            hint=f"raise {setting} or use a faster RPC node",
        )

    def _result(self, method: str, response: httpx.Response) -> Any:  # noqa: ANN401 - JSON
        where = f"{method} at {self.redacted_url}"
        status = response.status_code
        if status == HTTP_TOO_MANY_REQUESTS:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            raise RpcRateLimited(f"{where}: HTTP 429", retry_after=retry_after)
        if status in RETRYABLE_STATUSES:
            raise RpcServerError(f"{where}: HTTP {status}")
        if status in _AUTH_STATUSES:
            raise RpcResponseError(
                f"{where}: HTTP {status}, the node refused the request",
                hint="check the API key or token in rpc.url (KEEPER_RPC_URL)",
            )
        try:
            payload = response.json()
        except ValueError as error:
            raise NotJsonRpc(f"{where}: HTTP {status} with a body that is not JSON") from error
        if isinstance(payload, dict) and payload.get("error") is not None:
            raise json_rpc_error(where, payload["error"])
        if status != HTTP_OK:
            raise NotJsonRpc(f"{where}: HTTP {status}")
        if not isinstance(payload, dict) or "result" not in payload:
            raise NotJsonRpc(f"{where}: a JSON answer without a JSON-RPC result")
        return payload["result"]


def json_rpc_error(where: str, error: object) -> RpcError:
    """The typed error for a JSON-RPC ``error`` member (rate limits and lag are transient)."""
    if not isinstance(error, dict):
        return RpcCallError(f"{where}: malformed error object", data=error)
    code = error.get("code")
    message = str(error.get("message", ""))
    if code in _RATE_LIMIT_CODES:
        return RpcRateLimited(f"{where}: {message} ({code})")
    if code in _NODE_UNHEALTHY_CODES:
        return RpcServerError(f"{where}: {message} ({code})")
    return RpcCallError(
        f"{where}: {message} ({code})",
        code=code if isinstance(code, int) else None,
        data=error.get("data"),
    )
