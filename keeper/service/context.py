"""The keeper's working parts, built once from settings, with start-up checks that stop
before any signing and name the problem and its fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from keeper.chain.accounts import get_account
from keeper.chain.endpoints import FailoverRpc, Role
from keeper.chain.keypair import Exposure, exposure, load_keypair
from keeper.chain.pages import ScanMethod, ScanOptions, scan_program_accounts
from keeper.chain.rpc import NotJsonRpc, RpcClient
from keeper.errors import ConfigError, KeypairError, RpcError
from keeper.program import filters
from keeper.program.ids import TOKEN_PROGRAM
from keeper.service.metrics import Metrics
from keeper.service.settings import Settings
from keeper.tasks.identity import ClaimIdentity

if TYPE_CHECKING:
    from keeper.chain.endpoints import Rpc

log = structlog.get_logger("keeper")

TOKEN_ACCOUNT_SIZE = 165


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the keeper is on chain. ``node`` and ``claim`` are set only when claiming."""

    keypair: Keypair
    program_id: Pubkey
    market_admin: Pubkey
    nos_mint: Pubkey
    node: Keypair | None = None
    claim: ClaimIdentity | None = None

    @property
    def is_admin(self) -> bool:
        return self.keypair.pubkey() == self.market_admin


def load_identity(settings: Settings, *, dry_run: bool = False, claim: bool = True) -> Identity:
    """Keypairs from files (never logged), checked before anything else happens.

    A dry run may go without one (none configured, or the configured file does not exist):
    it then plans as a throwaway key that is not the admin. ``claim=False`` leaves the node
    identity out (``check`` reports it on its own row).
    """
    if dry_run and (settings.keypair is None or not settings.keypair.expanduser().exists()):
        log.warning(
            "no keypair: dry run plans as a throwaway key (not the market admin)",
            keypair=None if settings.keypair is None else str(settings.keypair),
        )
        return _identity(settings, Keypair(), None)
    if settings.keypair is None:
        raise KeypairError(
            "no keypair configured",
            hint="set KEEPER_KEYPAIR (or `keypair:` in the YAML) to a Solana CLI JSON keypair file",
        )
    keypair = load_keypair(settings.keypair)
    node = load_node(settings, keypair) if claim and settings.claim.enabled else None
    return _identity(settings, keypair, node)


def load_node(settings: Settings, keypair: Keypair) -> Keypair:
    """The node authority that signs claims: claim.node_keypair, or the keeper keypair."""
    if settings.claim.nft is None:
        raise ConfigError(
            "claiming is enabled but no NFT token account is configured",
            hint="set KEEPER_CLAIM_NFT to the node's NFT token account, or disable claiming",
        )
    path = settings.claim.node_keypair
    return keypair if path is None else load_keypair(path)


def keypair_warnings(settings: Settings) -> list[Exposure]:
    """Keypair files other users can access (see ``keeper.chain.keypair.exposure``)."""
    paths = [settings.keypair]
    if settings.claim.enabled:
        paths.append(settings.claim.node_keypair)
    return [warning for path in paths if path is not None and (warning := exposure(path))]


def with_node(identity: Identity, node: Keypair) -> Identity:
    return Identity(
        identity.keypair, identity.program_id, identity.market_admin, identity.nos_mint, node
    )


def _identity(settings: Settings, keypair: Keypair, node: Keypair | None) -> Identity:
    return Identity(
        keypair=keypair,
        program_id=Pubkey.from_string(settings.program_id),
        market_admin=Pubkey.from_string(settings.market_admin),
        nos_mint=Pubkey.from_string(settings.nos_mint),
        node=node,
    )


def scan_options(settings: Settings) -> ScanOptions:
    """How the configured node is scanned (rpc.scan_method, chunk size, page limit)."""
    rpc = settings.rpc
    return ScanOptions(ScanMethod(rpc.scan_method), rpc.scan_chunk_size, rpc.scan_page_limit)


async def _count_markets(rpc: Rpc, program_id: Pubkey, options: ScanOptions) -> int:
    """MarketAccounts of ``program_id``, keys only, by the configured scan method."""
    total = 0
    async for chunk in scan_program_accounts(
        rpc, program_id, filters.all_markets(), filters.no_data(), record_size=0, options=options
    ):
        total += len(chunk) + len(chunk.odd)
    return total


async def check_program(rpc: Rpc, program_id: Pubkey, options: ScanOptions | None = None) -> int:
    """The configured program id must be a deployed program holding Nosana Jobs accounts.

    A deployed program of another kind (the System program, a token program) would
    otherwise pass and make every scan find nothing. Returns the MarketAccounts found, read
    keys only (``dataSlice`` of length 0), by ``options``' scan method (default: the
    standard getProgramAccounts).
    """
    account = await get_account(rpc, program_id)
    if account is None or not account.executable:
        found = "no account" if account is None else f"a data account owned by {account.owner}"
        raise ConfigError(
            f"program {program_id} is not a deployed program on {rpc.redacted_url} (found {found})",
            hint=_PROGRAM_HINT,
        )
    try:
        markets = await _count_markets(rpc, program_id, options or ScanOptions())
    except RpcError as error:
        raise ConfigError(
            f"cannot list the accounts of program {program_id} on {rpc.redacted_url}: {error}",
            hint=error.hint,  # the read's own fix (a method the node lacks, a timeout)
        ) from error
    if markets == 0:
        raise ConfigError(
            f"program {program_id} is deployed on {rpc.redacted_url} but holds no Nosana "
            "Jobs MarketAccount (a key-only getProgramAccounts by its discriminator found "
            "none): it is not the Nosana Jobs program",
            hint=_PROGRAM_HINT,
        )
    return markets


_PROGRAM_HINT = (
    "set KEEPER_PROGRAM_ID to this cluster's Nosana Jobs program (mainnet and devnet ids "
    "differ: see config/profiles/)"
)


async def check_rpc(rpc: Rpc) -> None:
    try:
        await rpc.call("getVersion")
    except NotJsonRpc as error:
        raise NotJsonRpc(f"RPC {rpc.redacted_url} is not a JSON-RPC endpoint: {error}") from error
    except RpcError as error:
        raise RpcError(
            f"RPC {rpc.redacted_url} is unreachable: {error}",
            hint="check KEEPER_RPC_URL, the network and the node's health",
        ) from error


async def resolve_claim(rpc: Rpc, identity: Identity, nft: str | None) -> Identity:
    """Derive the claim accounts: the NFT's mint is read from its token account."""
    if identity.node is None or nft is None:
        return identity
    nft_key = Pubkey.from_string(nft)
    account = await get_account(rpc, nft_key)
    if account is None or account.owner != TOKEN_PROGRAM or len(account.data) < 64:
        raise ConfigError(
            f"claim NFT {nft_key} is not an SPL token account",
            hint="set KEEPER_CLAIM_NFT to the node's NFT *token account* (not the mint)",
        )
    claim = ClaimIdentity.derive(
        authority=identity.node.pubkey(),
        nft=nft_key,
        nft_mint=Pubkey.from_bytes(account.data[:32]),
        nos_mint=identity.nos_mint,
    )
    return Identity(
        identity.keypair,
        identity.program_id,
        identity.market_admin,
        identity.nos_mint,
        identity.node,
        claim,
    )


@dataclass(slots=True)
class RpcMetrics:
    """chain.rpc's observer, reporting to Prometheus."""

    metrics: Metrics

    def request_done(self, method: str, outcome: str, seconds: float) -> None:
        self.metrics.rpc_requests.labels(method=method, outcome=outcome).inc()
        self.metrics.rpc_latency.labels(method=method).observe(seconds)


@dataclass(slots=True)
class EndpointMetrics:
    """chain.endpoints' observer: each endpoint's health, by role and position."""

    metrics: Metrics

    def endpoint_health(self, role: Role, index: int, *, up: bool) -> None:
        labels = {"role": str(role), "endpoint": str(index)}
        self.metrics.rpc_endpoint_up.labels(**labels).set(int(up))
        if not up:
            self.metrics.rpc_endpoint_failures.labels(**labels).inc()


def single_client(url: str, settings: Settings, metrics: Metrics) -> RpcClient:
    """One endpoint's client, with the rpc group's retries, timeout and rate limit."""
    return RpcClient(
        url,
        timeout_s=settings.rpc.timeout_seconds,
        call_deadline_s=settings.rpc.call_deadline_seconds,
        scan_deadline_s=settings.rpc.scan_deadline_seconds,
        max_retries=settings.rpc.max_retries,
        requests_per_second=settings.rpc.requests_per_second,
        observer=RpcMetrics(metrics),
        on_bytes=metrics.count_response_bytes,
    )


def rpc_client(settings: Settings, metrics: Metrics) -> FailoverRpc:
    """The read endpoints (rpc.url, then rpc.urls) with failover; sends fan out to
    rpc.send_urls too."""
    return FailoverRpc(
        [single_client(url, settings, metrics) for url in settings.rpc.read_urls()],
        sends=[single_client(url, settings, metrics) for url in settings.rpc.send_urls],
        observer=EndpointMetrics(metrics),
        cooldown_s=settings.rpc.failover_cooldown_seconds,
    )


def verify_clients(settings: Settings, metrics: Metrics) -> list[RpcClient]:
    """One client per rpc.verify_urls entry: each must agree on its own, so no failover."""
    return [single_client(url, settings, metrics) for url in settings.rpc.verify_urls]


NO_VERIFY_WARNING = (
    "no rpc.verify_urls: cleanAdmin and quitAdmin trust the read endpoint alone "
    "(a lying RPC could close live accounts); set rpc.verify_urls to independent endpoints"
)
