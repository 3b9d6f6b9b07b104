"""Every line the keeper writes to stderr is one structured line, APScheduler's included."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from keeper.service.logs import configure_logging


class _Watched(io.StringIO):
    """A log stream that sets ``seen`` once ``needle`` has been written."""

    def __init__(self, needle: str) -> None:
        super().__init__()
        self.needle = needle
        self.seen = asyncio.Event()

    def write(self, text: str) -> int:
        if self.needle in text:
            self.seen.set()
        return super().write(text)


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_apscheduler_warnings_come_out_as_json_lines() -> None:
    stream = _Watched("maximum number of running instances")
    configure_logging("INFO", "json", stream)
    release = asyncio.Event()

    async def slow_pass() -> None:
        await release.wait()

    scheduler = AsyncIOScheduler()
    # A pass slower than its interval: the next tick is skipped, and APScheduler says so.
    scheduler.add_job(slow_pass, "interval", seconds=0.05, max_instances=1, id="finished_jobs")
    scheduler.start()
    try:
        async with asyncio.timeout(30):
            await stream.seen.wait()
    finally:
        release.set()
        scheduler.shutdown(wait=False)
    lines = _lines(stream)  # every line parses: no plain text among the JSON
    skipped = [line for line in lines if "maximum number of running instances" in str(line)]
    assert skipped
    assert skipped[0]["level"] == "warning"
    assert str(skipped[0]["logger"]).startswith("apscheduler")
    assert "timestamp" in skipped[0]


async def test_apscheduler_chatter_below_warning_stays_out() -> None:
    stream = io.StringIO()
    configure_logging("INFO", "json", stream)
    ran = asyncio.Event()

    async def quick_pass() -> None:
        ran.set()

    scheduler = AsyncIOScheduler()
    now = datetime.now(UTC)
    scheduler.add_job(quick_pass, "interval", seconds=60, next_run_time=now, id="quit")
    scheduler.start()
    try:
        async with asyncio.timeout(30):
            await ran.wait()
    finally:
        scheduler.shutdown(wait=False)
    assert "Running job" not in stream.getvalue()  # INFO: said better by the pass lines


def test_configuring_twice_does_not_duplicate_lines() -> None:
    import logging  # noqa: PLC0415

    first, second = io.StringIO(), io.StringIO()
    configure_logging("INFO", "json", first)
    configure_logging("INFO", "json", second)
    logging.getLogger("apscheduler.scheduler").warning("Run time of job %s was missed", "x")
    assert first.getvalue() == ""
    assert len(_lines(second)) == 1
    assert _lines(second)[0]["event"] == "Run time of job x was missed"
