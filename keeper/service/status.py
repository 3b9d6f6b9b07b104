"""``nosana-keeper status``: what waits on chain right now, and what this keeper may do.

One read of the chain (the same scans and pure decisions as a census pass, every task
judged as if its rights were granted) and nothing signed: per task, action and reason the
accounts waiting and the lamports their closes return, and whether this keeper may act on
them (admin actions need MARKET_ADMIN, claims a node identity); then what is left alone,
per reason. No keypair is needed: without one the keeper is taken as not the admin.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field

from keeper.chain.clock import chain_time
from keeper.chain.pages import ScanMethod
from keeper.chain.scan import ScanObserver
from keeper.program.instructions import MaintenanceInstruction
from keeper.service import discovery
from keeper.service.context import (
    Identity,
    check_program,
    check_rpc,
    load_identity,
    resolve_claim,
    rpc_client,
    scan_options,
)
from keeper.service.metrics import new_metrics
from keeper.service.settings import Settings
from keeper.tasks import expired_runs, finished_jobs, stopped_jobs
from keeper.tasks.plan import Plan

_ADMIN_ACTIONS = {MaintenanceInstruction.QUIT_ADMIN, MaintenanceInstruction.CLEAN_ADMIN}


@dataclass(frozen=True, slots=True)
class Waiting:
    """Accounts one action would resolve for one reason. ``lamports``: what their closes
    return to payers (negative for claims: the rent of the runs a claim creates)."""

    task: str
    action: str
    reason: str
    accounts: int
    lamports: int
    may_act: bool
    why_not: str = ""


@dataclass(frozen=True, slots=True)
class LeftAlone:
    task: str
    reason: str
    accounts: int


@dataclass(slots=True)
class ChainStatus:
    chain_time: int
    program: str
    markets: int
    keeper: str
    admin: bool
    claim_identity: bool
    waiting: list[Waiting] = field(default_factory=list)
    left_alone: list[LeftAlone] = field(default_factory=list)
    orphans: int = 0

    def as_json(self) -> str:
        return json.dumps({"status": asdict(self)}, sort_keys=True)

    def table(self) -> list[str]:
        role = "market admin" if self.admin else "not the market admin"
        lines = [
            (
                f"chain time {self.chain_time}; program {self.program} "
                f"({self.markets} markets); keeper {self.keeper} ({role})"
            ),
            "",
            f"{'task':14} {'action':11} {'reason':18} {'accounts':>9} {'lamports':>15}  keeper",
        ]
        for row in self.waiting:
            may = "may act" if row.may_act else f"may not: {row.why_not}"
            lines.append(
                f"{row.task:14} {row.action:11} {row.reason:18} {row.accounts:>9,} "
                f"{row.lamports:>15,}  {may}"
            )
        total = sum(row.accounts for row in self.waiting)
        lamports = sum(row.lamports for row in self.waiting)
        lines.append(f"{'total':45} {total:>9,} {lamports:>15,}")
        if not self.waiting:
            lines.append("(nothing waiting)")
        lines += ["", f"{'left alone':14} {'reason':30} {'accounts':>9}"]
        lines += [f"{row.task:14} {row.reason:30} {row.accounts:>9,}" for row in self.left_alone]
        lines.append(f"orphan jobs (queued, no run, in no queue; never touched): {self.orphans}")
        return lines


def _why_not(action: MaintenanceInstruction, identity: Identity) -> str:
    if action in _ADMIN_ACTIONS and not identity.is_admin:
        return "not the market admin"
    if action is MaintenanceInstruction.CLAIM and identity.claim is None:
        return "no claim identity (claim.enabled, claim.nft)"
    return ""


def _tally(plan: Plan, identity: Identity, status: ChainStatus) -> None:
    groups: dict[tuple[MaintenanceInstruction, str], list[int]] = {}
    for action in plan.actions:
        groups.setdefault((action.kind, str(action.reason)), []).append(action.lamports)
    for (kind, reason), lamports in sorted(groups.items()):
        why_not = _why_not(kind, identity)
        status.waiting.append(
            Waiting(
                str(plan.task),
                str(kind),
                reason,
                len(lamports),
                sum(lamports),
                not why_not,
                why_not,
            )
        )
    skips: Counter[str] = Counter({str(reason): n for reason, n in plan.skips.items()})
    status.left_alone.extend(
        LeftAlone(str(plan.task), reason, count) for reason, count in sorted(skips.items())
    )
    status.orphans += len(plan.orphans)


def _has_keypair(settings: Settings) -> bool:
    return settings.keypair is not None and settings.keypair.expanduser().exists()


async def chain_status(settings: Settings, observer: ScanObserver | None = None) -> ChainStatus:
    """One read of everything waiting, judged on chain time; nothing is signed."""
    identity = load_identity(settings, dry_run=True)  # a missing keypair is fine here
    async with rpc_client(settings, new_metrics()) as rpc:
        await check_rpc(rpc)
        markets = await check_program(rpc, identity.program_id, scan_options(settings))
        identity = await resolve_claim(rpc, identity, settings.claim.nft)
        now = (await chain_time(rpc)).unix_timestamp
        scope = discovery.Scope(
            rpc,
            identity.program_id,
            settings.rpc.scan_chunk_size,
            ScanMethod(settings.rpc.scan_method),
            settings.rpc.scan_page_limit,
            observer=observer,
        )
        # Judged as if admin: what waits is a fact of the chain; who may act is a column.
        quit_params = expired_runs.ExpiredRunsParams(
            is_admin=True, grace_seconds=settings.quit.grace_seconds
        )
        claim_params = stopped_jobs.StoppedJobsParams(
            claim_enabled=identity.claim is not None,
            identity=identity.claim,
            payer=identity.keypair.pubkey(),
        )
        request = discovery.PassRequest(
            now=now,
            expired_runs=quit_params,
            stopped_jobs=claim_params,
            finished_jobs=finished_jobs.FinishedJobsParams(is_admin=True),
        )  # no limits: every due action counts
        read = await discovery.full_read(scope, request)
        plans = [plan for plan, _findings in read.plans.values()]
    status = ChainStatus(
        chain_time=now,
        program=str(identity.program_id),
        markets=markets,
        keeper=str(identity.keypair.pubkey()) if _has_keypair(settings) else "(no keypair)",
        admin=identity.is_admin,
        claim_identity=identity.claim is not None,
    )
    for plan in plans:
        _tally(plan, identity, status)
    return status
