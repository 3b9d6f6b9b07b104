"""Two finished-jobs passes in one keeper (dry run): the first takes the census of every
job, the second runs between censuses on the markets it remembers. Prints both times.

Usage (environment as for `nosana-keeper run`): steady_pass.py
"""

import asyncio
import io
import json
import os
import time
from pathlib import Path

from prometheus_client import CollectorRegistry

from keeper.service.metrics import Metrics
from keeper.service.runner import Keeper
from keeper.service.settings import load_settings
from keeper.tasks.plan import Task


async def main() -> None:
    settings = load_settings(Path(os.environ["KEEPER_CONFIG"]))
    sink = io.StringIO()  # the dry-run lines; cleared after each pass
    keeper = Keeper(settings, Metrics(CollectorRegistry()), dry_run=True, out=sink)
    await keeper.start()
    try:
        seconds = []
        for _ in range(2):
            started = time.perf_counter()
            report = await keeper.run_task(Task.FINISHED_JOBS)
            seconds.append(round(time.perf_counter() - started, 2))
            sink.seek(0)
            sink.truncate()
            if report.errors:
                raise SystemExit(f"pass failed: {report.errors}")
    finally:
        await keeper.close()
    print(json.dumps({"census_pass_seconds": seconds[0], "between_censuses_seconds": seconds[1]}))


if __name__ == "__main__":
    asyncio.run(main())
