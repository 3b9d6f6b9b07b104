"""gather_bounded: ordered results, a concurrency bound, and the first error as itself."""

from __future__ import annotations

import asyncio

import pytest

from keeper.chain.concurrency import gather_bounded
from keeper.errors import RpcServerError


async def test_results_keep_their_order_and_the_bound_holds() -> None:
    running = 0
    peak = 0

    async def job(n: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0)
        running -= 1
        return n * n

    jobs = [lambda n=n: job(n) for n in range(10)]
    assert await gather_bounded(jobs, 3) == [n * n for n in range(10)]
    assert peak <= 3


async def test_the_first_failure_is_raised_unwrapped_and_the_rest_cancelled() -> None:
    cancelled = asyncio.Event()

    async def slow() -> int:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return 0

    async def failing() -> int:
        raise RpcServerError("HTTP 503")

    with pytest.raises(RpcServerError):
        await gather_bounded([slow, failing], 2)
    assert cancelled.is_set()


async def test_the_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="limit"):
        await gather_bounded([], 0)
