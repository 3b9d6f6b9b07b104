"""``nosana-keeper check``: everything that would stop the keeper, as a readable table."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from keeper.chain.accounts import get_balance
from keeper.errors import KeeperError
from keeper.program.layouts import StakeAccount
from keeper.service.context import (
    NO_VERIFY_WARNING,
    Identity,
    check_program,
    check_rpc,
    keypair_warnings,
    load_identity,
    load_node,
    resolve_claim,
    rpc_client,
    scan_options,
    single_client,
    with_node,
)
from keeper.service.discovery import Scope, stake_of
from keeper.service.metrics import Metrics, new_metrics
from keeper.service.settings import Settings

if TYPE_CHECKING:
    from keeper.chain.endpoints import Rpc
    from keeper.chain.pages import ScanOptions


class Row(NamedTuple):
    """One line of the table. ``warn``: fine to run, but worth fixing (ok stays True)."""

    name: str
    ok: bool
    detail: str
    warn: bool = False

    @property
    def status(self) -> str:
        if not self.ok:
            return "FAIL"
        return "warn" if self.warn else "ok"


def _failed(name: str, error: KeeperError) -> Row:
    return Row(name, ok=False, detail=f"{error} — fix: {error.hint}")


async def run_checks(settings: Settings) -> list[Row]:
    rows = [Row("configuration", ok=True, detail="settings are valid")]
    try:
        identity = load_identity(settings, claim=False)
    except KeeperError as error:
        return [*rows, _failed("keypair", error)]
    rows.append(Row("keypair", ok=True, detail=f"public key {identity.keypair.pubkey()}"))
    rows.extend(
        Row("keypair mode", ok=True, detail=f"{found.message} — fix: {found.fix}", warn=True)
        for found in keypair_warnings(settings)
    )
    metrics = new_metrics()
    async with rpc_client(settings, metrics) as rpc:
        chain_rows = await _chain_rows(rpc, identity, scan_options(settings))
        rows.extend(chain_rows)
        if not all(row.ok for row in chain_rows):
            return rows
        rows.extend(await _endpoint_rows(settings, metrics))
        balance = await get_balance(rpc, identity.keypair.pubkey())
        floor = settings.fees.balance_floor_lamports
        rows.append(
            Row("balance", balance >= floor, f"{balance / 1e9:.4f} SOL (floor {floor / 1e9:.4f})")
        )
        if settings.claim.enabled:
            rows.extend(
                await _claim_rows(settings, identity, Scope(rpc, identity.program_id, 1000))
            )
    return rows


async def _endpoint_rows(settings: Settings, metrics: Metrics) -> list[Row]:
    """With several endpoints, each answers on its own (the `rpc` row passes when any read
    endpoint does), and whether admin actions are verified at all."""
    rpc = settings.rpc
    reads = rpc.read_urls()
    named = [
        *((("rpc.url", reads[0]),) if len(reads) > 1 else ()),
        *((f"rpc.urls[{i}]", url) for i, url in enumerate(reads[1:])),
        *((f"rpc.send_urls[{i}]", url) for i, url in enumerate(rpc.send_urls)),
        *((f"rpc.verify_urls[{i}]", url) for i, url in enumerate(rpc.verify_urls)),
    ]
    rows: list[Row] = []
    for name, url in named:
        async with single_client(url, settings, metrics) as client:
            try:
                await check_rpc(client)
            except KeeperError as error:
                rows.append(_failed(name, error))
            else:
                rows.append(Row(name, ok=True, detail=client.redacted_url))
    if not rpc.verify_urls:
        rows.append(Row("verify", ok=True, detail=NO_VERIFY_WARNING, warn=True))
    return rows


async def _chain_rows(rpc: Rpc, identity: Identity, options: ScanOptions) -> list[Row]:
    """RPC, then program, then role: each only once the one before it passed."""
    try:
        await check_rpc(rpc)
    except KeeperError as error:
        return [_failed("rpc", error)]
    rows = [Row("rpc", ok=True, detail=rpc.redacted_url)]
    try:
        markets = await check_program(rpc, identity.program_id, options)
    except KeeperError as error:
        return [*rows, _failed("program", error)]
    detail = f"{identity.program_id} ({markets} markets)"
    return [*rows, Row("program", ok=True, detail=detail), _role(identity)]


def _role(identity: Identity) -> Row:
    if identity.is_admin:
        return Row("role", ok=True, detail="market admin: quitAdmin and cleanAdmin enabled")
    return Row(
        "role", ok=True, detail=f"not the market admin ({identity.market_admin}): clean only"
    )


async def _claim_rows(settings: Settings, identity: Identity, scope: Scope) -> list[Row]:
    try:
        node = load_node(settings, identity.keypair)
        resolved = await resolve_claim(scope.rpc, with_node(identity, node), settings.claim.nft)
    except KeeperError as error:
        return [_failed("claim", error)]
    claim = resolved.claim
    if claim is None:
        return [Row("claim identity", ok=False, detail="no node identity")]
    stake = await stake_of(scope, claim.stake)
    if not isinstance(stake, StakeAccount):
        detail = f"no stake account at {claim.stake}: stake NOS first"
        return [Row("claim stake", ok=False, detail=detail)]
    return [
        Row("claim nft", ok=True, detail=f"{claim.nft} (metadata {claim.metadata})"),
        Row("claim stake", ok=True, detail=f"xNOS {stake.xnos} at {claim.stake}"),
    ]
