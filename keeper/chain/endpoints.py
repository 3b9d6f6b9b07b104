"""Several RPC endpoints behind one client: ordered failover for reads, fan-out for sends.

Each endpoint is an ``RpcClient`` of its own (its retries, rate limit and timeouts). A read
goes to the first endpoint in configured order that is not sitting out; an endpoint whose
request fails after its own retries (HTTP 429/5xx, timeouts, refused connections, answers
that are not JSON-RPC) sits out ``cooldown_s`` and the request moves to the next one. An
endpoint sitting out stays the last resort, so when every endpoint fails the request is still
tried everywhere. A JSON-RPC error object is the node's answer, never a reason to fail over.

``sendTransaction`` goes to the read endpoint in use and to every send endpoint at once,
the same signed bytes (nodes de-duplicate by signature); the first acceptance is the
answer, the rest finish in the background.

Endpoints are named by role and position (``read`` 0, ``send`` 1, ...), never by URL: a URL
may carry an API key. Logs carry the redacted URL.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final, Protocol, Self

import structlog

from keeper.chain.rpc import RpcCallError
from keeper.errors import RpcError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Sequence
    from contextlib import AbstractAsyncContextManager

    from keeper.chain.rpc import RpcClient

log = structlog.get_logger("keeper.chain.endpoints")

SEND_METHOD: Final = "sendTransaction"


class Rpc(Protocol):
    """What the chain layer needs of a JSON-RPC client (``RpcClient`` and ``FailoverRpc``)."""

    @property
    def redacted_url(self) -> str: ...

    async def call(self, method: str, params: Sequence[Any] = ()) -> Any: ...  # noqa: ANN401 - JSON

    def stream(
        self, method: str, params: Sequence[Any] = (), *, read_timeout_s: float | None = None
    ) -> AbstractAsyncContextManager[AsyncIterator[bytes]]: ...

    async def aclose(self) -> None: ...


class Role(StrEnum):
    """What an endpoint is for: the ``role`` label of the endpoint metrics."""

    READ = "read"
    SEND = "send"
    VERIFY = "verify"


class EndpointObserver(Protocol):
    """Told when an endpoint answers (``up``) or fails after its retries. Wired to metrics."""

    def endpoint_health(self, role: Role, index: int, *, up: bool) -> None: ...


class NullEndpointObserver:
    def endpoint_health(self, role: Role, index: int, *, up: bool) -> None:
        pass


def is_endpoint_fault(error: BaseException) -> bool:
    """A failure of the endpoint itself (worth another endpoint), not the node's answer."""
    return isinstance(error, RpcError) and not isinstance(error, RpcCallError)


@dataclass(slots=True)
class Endpoint:
    client: RpcClient
    role: Role
    index: int
    sits_out_until: float | None = None


class FailoverRpc:
    """Reads with ordered failover over ``reads``; sends also fanned out to ``sends``."""

    def __init__(
        self,
        reads: Sequence[RpcClient],
        *,
        sends: Sequence[RpcClient] = (),
        observer: EndpointObserver | None = None,
        cooldown_s: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not reads:
            raise ValueError("at least one read endpoint is needed")
        self.reads = tuple(Endpoint(c, Role.READ, i) for i, c in enumerate(reads))
        self.sends = tuple(Endpoint(c, Role.SEND, i) for i, c in enumerate(sends))
        self._observer: EndpointObserver = observer or NullEndpointObserver()
        self._cooldown_s = cooldown_s
        self._monotonic = monotonic
        self._background: set[asyncio.Task[Any]] = set()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for task in list(self._background):
            task.cancel()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        for endpoint in (*self.reads, *self.sends):
            await endpoint.client.aclose()

    @property
    def redacted_url(self) -> str:
        """The redacted URL of the read endpoint requests go to now."""
        return self.order()[0].client.redacted_url

    def order(self) -> list[Endpoint]:
        """Read endpoints in the order to try them: configured order, those sitting out last."""
        now = self._monotonic()
        ready = [e for e in self.reads if e.sits_out_until is None or e.sits_out_until <= now]
        resting = sorted(
            (e for e in self.reads if e not in ready), key=lambda e: e.sits_out_until or 0.0
        )
        return ready + resting

    # -- requests ---------------------------------------------------------------------

    async def call(self, method: str, params: Sequence[Any] = ()) -> Any:  # noqa: ANN401 - JSON
        if method == SEND_METHOD and self.sends:
            return await self._fan_out(method, params)
        last: RpcError | None = None
        for endpoint in self.order():
            try:
                result = await endpoint.client.call(method, params)
            except RpcError as error:
                if not is_endpoint_fault(error):
                    self._answered(endpoint)
                    raise
                self._failed(endpoint, method, error)
                last = error
                continue
            self._answered(endpoint)
            return result
        assert last is not None
        raise last

    @asynccontextmanager
    async def stream(
        self, method: str, params: Sequence[Any] = (), *, read_timeout_s: float | None = None
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        """The first endpoint that opens the stream serves it. A failure once bytes flow is
        raised (a stream cannot resume elsewhere) and the endpoint sits out."""
        last: RpcError | None = None
        for endpoint in self.order():
            stack = AsyncExitStack()
            try:
                body = await stack.enter_async_context(
                    endpoint.client.stream(method, params, read_timeout_s=read_timeout_s)
                )
            except RpcError as error:
                if not is_endpoint_fault(error):
                    raise
                self._failed(endpoint, method, error)
                last = error
                continue
            async with stack:
                try:
                    yield body
                except RpcError as error:
                    if is_endpoint_fault(error):
                        self._failed(endpoint, method, error)
                    raise
                self._answered(endpoint)
            return
        assert last is not None
        raise last

    async def _fan_out(self, method: str, params: Sequence[Any]) -> Any:  # noqa: ANN401 - JSON
        """The same request to the current read endpoint and every send endpoint; the first
        success answers. Else the first node's refusal (an answer), else the read's error."""
        targets = [self.order()[0], *self.sends]
        pending = {
            asyncio.ensure_future(self._sent(e, e.client.call(method, params))): position
            for position, e in enumerate(targets)
        }
        errors: dict[int, BaseException] = {}
        while pending:
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            answers = []
            for task in done:
                position = pending.pop(task)
                error = task.exception()
                if error is None:
                    answers.append(task.result())
                else:
                    errors[position] = error
            if answers:
                self._finish_in_background(pending)
                return answers[0]
        refusals = [errors[i] for i in sorted(errors) if isinstance(errors[i], RpcCallError)]
        raise refusals[0] if refusals else errors[min(errors)]

    def _finish_in_background(self, tasks: Iterable[asyncio.Task[Any]]) -> None:
        """Let the slower sends finish (their health is still recorded); aclose cancels."""
        for task in tasks:
            self._background.add(task)
            task.add_done_callback(_retrieved)
            task.add_done_callback(self._background.discard)

    async def _sent(self, endpoint: Endpoint, request: Coroutine[Any, Any, Any]) -> Any:  # noqa: ANN401 - JSON
        try:
            result = await request
        except RpcError as error:
            if is_endpoint_fault(error):
                self._failed(endpoint, SEND_METHOD, error)
            else:
                self._answered(endpoint)
            raise
        self._answered(endpoint)
        return result

    # -- health -----------------------------------------------------------------------

    def _answered(self, endpoint: Endpoint) -> None:
        if endpoint.sits_out_until is not None:
            log.info(
                "rpc endpoint answers again",
                role=str(endpoint.role),
                endpoint=endpoint.index,
                url=endpoint.client.redacted_url,
            )
        endpoint.sits_out_until = None
        self._observer.endpoint_health(endpoint.role, endpoint.index, up=True)

    def _failed(self, endpoint: Endpoint, method: str, error: RpcError) -> None:
        if endpoint.role is Role.READ:
            endpoint.sits_out_until = self._monotonic() + self._cooldown_s
        log.warning(
            "rpc endpoint failed",
            role=str(endpoint.role),
            endpoint=endpoint.index,
            url=endpoint.client.redacted_url,
            method=method,
            error=str(error),
            sits_out_s=self._cooldown_s if endpoint.role is Role.READ else 0,
        )
        self._observer.endpoint_health(endpoint.role, endpoint.index, up=False)


def _retrieved(task: asyncio.Task[Any]) -> None:
    """Mark a background task's outcome as seen (its failure was already logged)."""
    if not task.cancelled():
        task.exception()
