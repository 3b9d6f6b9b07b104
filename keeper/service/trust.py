"""The local clock's veto and the verify endpoints' agreement, applied to actions.

``ClockGuard`` compares each read of chain time with this machine's clock (metrics, log,
readiness); while the chain leads by more than ``chain.max_clock_lead_seconds`` the
time-based actions are withheld. ``Verifier`` re-judges every admin action on each
``rpc.verify_urls`` endpoint's own reads. ``Trust.screen`` applies both, at planning and
again just before sending. The rules themselves are pure: ``keeper.tasks.trust``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog
from solders.pubkey import Pubkey

from keeper.chain.clock import chain_time
from keeper.chain.endpoints import EndpointObserver, Role
from keeper.chain.rpc import RpcClient
from keeper.errors import RpcError
from keeper.program.instructions import MaintenanceInstruction
from keeper.service.discovery import Scope, job_views, market_terms, run_views
from keeper.service.metrics import Metrics
from keeper.tasks import expired_runs, finished_jobs, trust
from keeper.tasks.plan import Action, Reason
from keeper.tasks.views import ABSENT, require

log = structlog.get_logger("keeper")

CLOCK_AHEAD = "clock_ahead"


@dataclass(slots=True)
class ClockGuard:
    """Watches chain time against this machine's clock; vetoes, never decides."""

    max_lead_s: int
    metrics: Metrics
    wall: Callable[[], float] = time.time
    lead_s: float | None = None
    paused: bool = False

    def observe(self, chain_unix: int) -> bool:
        """Record one read of chain time; True while time-based actions must wait."""
        wall = self.wall()
        lead = trust.clock_lead(chain_unix, wall)
        vetoed = trust.clock_vetoes(chain_unix, wall, self.max_lead_s)
        self.metrics.chain_clock_lead.set(lead)
        self.metrics.time_based_paused.labels(cause=CLOCK_AHEAD).set(int(vetoed))
        if vetoed:
            log.warning(
                "time-based actions paused",
                cause=CLOCK_AHEAD,
                chain_time=chain_unix,
                lead_s=round(lead),
                max_lead_s=self.max_lead_s,
                paused="quitAdmin run_timed_out, clean job_expired",
            )
        elif self.paused:
            log.info("time-based actions resume", lead_s=round(lead))
        self.lead_s, self.paused = lead, vetoed
        return vetoed

    def problem(self) -> str | None:
        """The readiness detail: None unless time-based actions are paused."""
        if not self.paused or self.lead_s is None:
            return None
        return (
            f"chain time leads this machine's clock by {self.lead_s:.0f}s "
            f"(chain.max_clock_lead_seconds {self.max_lead_s}): time-based actions paused"
        )


@dataclass(frozen=True, slots=True)
class Judged:
    """One verify endpoint's chain time and its verdict on each action (None: send)."""

    now: int
    verdicts: list[Reason | None]


@dataclass(slots=True)
class Verifier:
    """Every admin action must qualify on each verify endpoint's own reads too."""

    clients: Sequence[RpcClient]
    program_id: Pubkey
    is_admin: bool
    grace_seconds: int
    tolerance_s: int
    observer: EndpointObserver

    async def verify(self, actions: Sequence[Action], primary_now: int) -> list[Reason | None]:
        if not actions:
            return []
        judged = await asyncio.gather(
            *(self._judge(index, client, actions) for index, client in enumerate(self.clients))
        )
        answered = [j for j in judged if j is not None]
        agreed = trust.times_agree(primary_now, (j.now for j in answered), self.tolerance_s)
        out: list[Reason | None] = []
        for position, action in enumerate(actions):
            if len(answered) < len(judged):
                out.append(Reason.VERIFY_UNAVAILABLE)
            else:
                verdicts = [j.verdicts[position] for j in answered]
                out.append(trust.agreement(action, verdicts, times_agreed=agreed))
        self._log(actions, out, primary_now, answered)
        return out

    async def _judge(
        self, index: int, client: RpcClient, actions: Sequence[Action]
    ) -> Judged | None:
        try:
            now = (await chain_time(client)).unix_timestamp
            verdicts = await admin_verdicts(
                Scope(client, self.program_id, 1000),
                actions,
                now,
                expired_runs.ExpiredRunsParams(self.is_admin, self.grace_seconds),
                finished_jobs.FinishedJobsParams(is_admin=self.is_admin),
            )
        except RpcError as error:
            log.warning(
                "verify endpoint failed",
                endpoint=index,
                url=client.redacted_url,
                error=str(error),
            )
            self.observer.endpoint_health(Role.VERIFY, index, up=False)
            return None
        self.observer.endpoint_health(Role.VERIFY, index, up=True)
        return Judged(now, verdicts)

    def _log(
        self,
        actions: Sequence[Action],
        why: Sequence[Reason | None],
        primary_now: int,
        answered: Sequence[Judged],
    ) -> None:
        for action, reason in zip(actions, why, strict=True):
            if reason is not None:
                log.warning(
                    "verify endpoints do not confirm: withheld",
                    action=str(action.kind),
                    account=str(action.account),
                    reason=str(reason),
                    planned_for=str(action.reason),
                    chain_time=primary_now,
                    verify_chain_times=[j.now for j in answered],
                )


async def admin_verdicts(
    scope: Scope,
    actions: Sequence[Action],
    now: int,
    quit_params: expired_runs.ExpiredRunsParams,
    clean_params: finished_jobs.FinishedJobsParams,
) -> list[Reason | None]:
    """The tasks' own re-check of each admin action on ``scope``'s reads (None: send)."""
    quits = [a for a in actions if a.kind is MaintenanceInstruction.QUIT_ADMIN]
    cleans = [a for a in actions if a.kind is MaintenanceInstruction.CLEAN_ADMIN]
    runs = await run_views(scope, [a.account for a in quits])
    jobs = await job_views(
        scope, [*(a.job for a in quits if a.job is not None), *(a.account for a in cleans)]
    )
    markets = await market_terms(scope, [a.market for a in cleans if a.market is not None])
    verdicts: list[Reason | None] = []
    for action in actions:
        if action.kind is MaintenanceInstruction.QUIT_ADMIN:
            if action.job is None:  # never let an unfetched job look missing
                raise ValueError(f"quitAdmin action for {action.account} names no job")
            job = require(jobs, action.job, "job")
            verdicts.append(
                expired_runs.recheck(action, runs[action.account], job, now, quit_params)
            )
        elif action.kind is MaintenanceInstruction.CLEAN_ADMIN:
            market = markets[action.market] if action.market is not None else ABSENT
            verdicts.append(
                finished_jobs.recheck(action, jobs[action.account], market, now, clean_params)
            )
        else:
            raise ValueError(f"{action.kind} needs no verify endpoints")
    return verdicts


@dataclass(slots=True)
class Trust:
    """Both rules, over a list of actions: a reason to withhold each, or None."""

    clock: ClockGuard
    verifier: Verifier | None = None

    async def screen(self, actions: Sequence[Action], now: int) -> list[Reason | None]:
        """``now``: the read endpoint's chain time, just read (the guard records it)."""
        vetoed = self.clock.observe(now)
        why: list[Reason | None] = [
            Reason.CLOCK_AHEAD if vetoed and trust.is_time_based(a) else None for a in actions
        ]
        if self.verifier is None:
            return why
        asked = [i for i, a in enumerate(actions) if why[i] is None and trust.needs_agreement(a)]
        answers = await self.verifier.verify([actions[i] for i in asked], now)
        for position, reason in zip(asked, answers, strict=True):
            why[position] = reason
        return why
