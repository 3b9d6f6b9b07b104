"""/metrics, /healthz (alive) and /readyz (useful) on one aiohttp server.

Readiness is a set of named checks — RPC reachable, balance above the floor, each enabled
task successful recently — evaluated at most every ``cache_seconds``; the JSON body names
what fails.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from keeper.service.metrics import Metrics

Check = Callable[[], Awaitable[str | None]]  # None when healthy, else what is wrong
Detail = Callable[[], str | None]  # informational: shown in /readyz, never fails it


@dataclass
class Readiness:
    checks: Mapping[str, Check]
    cache_seconds: float = 5.0
    # "leader" or "standby" (service.leadership): a standby is ready, and says so.
    role: Callable[[], str] = lambda: "leader"
    details: Mapping[str, Detail] = field(default_factory=dict)
    _cached_at: float = field(default=-1e9, init=False)
    _failures: dict[str, str] = field(default_factory=dict, init=False)

    def use(self, started: Readiness) -> None:
        """Answer as ``started`` does from now on (this one was the start-up placeholder)."""
        self.checks = started.checks
        self.role = started.role
        self.details = started.details
        self._cached_at = -1e9

    async def failures(self) -> dict[str, str]:
        now = time.monotonic()
        if now - self._cached_at >= self.cache_seconds:
            failures: dict[str, str] = {}
            for name, check in self.checks.items():
                try:
                    problem = await check()
                except Exception as error:  # noqa: BLE001 - a failing probe is a not-ready answer
                    problem = f"{type(error).__name__}: {error}"
                if problem is not None:
                    failures[name] = problem
            self._failures = failures
            self._cached_at = now
        return dict(self._failures)


def build_app(metrics: Metrics, readiness: Readiness) -> web.Application:
    async def metrics_handler(_request: web.Request) -> web.Response:
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def readyz(_request: web.Request) -> web.Response:
        failures = await readiness.failures()
        status = 200 if not failures else 503
        body: dict[str, object] = {
            "ready": not failures,
            "failing": failures,
            "checks": sorted(readiness.checks),
            "role": readiness.role(),
        }
        details = {name: text for name, detail in readiness.details.items() if (text := detail())}
        if details:
            body["details"] = details
        return web.json_response(body, status=status)

    app = web.Application()
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


async def start_http(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Start serving; returns the runner (to clean up) and the bound port."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = site._server  # noqa: SLF001 - aiohttp exposes the bound port only here
    sockets = getattr(server, "sockets", None) or []
    bound = sockets[0].getsockname()[1] if sockets else port
    return runner, int(bound)
