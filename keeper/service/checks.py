"""``nosana-keeper check``: everything that would stop the keeper, as a readable table."""

from __future__ import annotations

from keeper.chain.accounts import get_balance
from keeper.errors import KeeperError
from keeper.program.layouts import StakeAccount
from keeper.service.context import (
    NO_VERIFY_WARNING,
    Identity,
    check_program,
    check_rpc,
    load_identity,
    resolve_claim,
    rpc_client,
    single_client,
)
from keeper.service.discovery import Scope, stake_of
from keeper.service.metrics import Metrics, new_metrics
from keeper.service.settings import Settings

Row = tuple[str, bool, str]


async def run_checks(settings: Settings) -> list[Row]:
    rows: list[Row] = [("configuration", True, "settings are valid")]
    try:
        identity = load_identity(settings)
    except KeeperError as error:
        return [*rows, ("keypair", False, f"{error} — fix: {error.hint}")]
    rows.append(("keypair", True, f"public key {identity.keypair.pubkey()}"))
    metrics = new_metrics()
    async with rpc_client(settings, metrics) as rpc:
        for name, step in (
            ("rpc", check_rpc(rpc)),
            ("program", check_program(rpc, identity.program_id)),
        ):
            try:
                await step
            except KeeperError as error:
                return [*rows, (name, False, f"{error} — fix: {error.hint}")]
            rows.append(
                (name, True, rpc.redacted_url if name == "rpc" else str(identity.program_id))
            )
        rows.extend(await _endpoint_rows(settings, metrics))
        rows.append(_role(identity))
        balance = await get_balance(rpc, identity.keypair.pubkey())
        floor = settings.fees.balance_floor_lamports
        rows.append(
            ("balance", balance >= floor, f"{balance / 1e9:.4f} SOL (floor {floor / 1e9:.4f})")
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
                rows.append((name, False, f"{error} — fix: {error.hint}"))
            else:
                rows.append((name, True, client.redacted_url))
    if not rpc.verify_urls:
        rows.append(("verify", True, f"warning: {NO_VERIFY_WARNING}"))
    return rows


def _role(identity: Identity) -> Row:
    if identity.is_admin:
        return ("role", True, "market admin: quitAdmin and cleanAdmin enabled")
    return ("role", True, f"not the market admin ({identity.market_admin}): clean only")


async def _claim_rows(settings: Settings, identity: Identity, scope: Scope) -> list[Row]:
    try:
        resolved = await resolve_claim(scope.rpc, identity, settings.claim.nft)
    except KeeperError as error:
        return [("claim nft", False, f"{error} — fix: {error.hint}")]
    claim = resolved.claim
    if claim is None:
        return [("claim identity", False, "no node identity")]
    stake = await stake_of(scope, claim.stake)
    if not isinstance(stake, StakeAccount):
        return [("claim stake", False, f"no stake account at {claim.stake}: stake NOS first")]
    return [
        ("claim nft", True, f"{claim.nft} (metadata {claim.metadata})"),
        ("claim stake", True, f"xNOS {stake.xnos} at {claim.stake}"),
    ]
