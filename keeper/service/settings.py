"""The one settings model. Precedence: defaults < YAML file < environment < CLI flags.

The YAML file comes from ``--config`` or ``KEEPER_CONFIG``. Environment variables use the
``KEEPER_`` prefix; a group's fields are ``KEEPER_<GROUP>_<FIELD>`` (``KEEPER_RPC_URL``,
``KEEPER_CLAIM_ENABLED``, ``KEEPER_QUIT_GRACE_SECONDS``). Settings are read once and
passed down as plain values; nothing reads them at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)
from solders.pubkey import Pubkey

from keeper.errors import ConfigError
from keeper.program.ids import MAINNET


def _pubkey(value: str) -> str:
    try:
        Pubkey.from_string(value)
    except ValueError as error:
        raise ValueError(f"{value!r} is not a base58 public key") from error
    return value


class Group(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _rpc_url(value: str) -> str:
    """An http(s) URL with a host and a port the network stack accepts (0-65535)."""
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    try:
        parts.port  # noqa: B018 - urllib checks the port range only when it is read
    except ValueError as error:
        raise ValueError(f"has an invalid port ({error})") from None
    return value


class RpcSettings(Group):
    url: str = Field(
        "https://api.mainnet-beta.solana.com",
        description="JSON-RPC endpoint. Use a node that serves getProgramAccounts; "
        "API keys in it are redacted from logs.",
    )
    timeout_seconds: float = Field(30.0, gt=0, description="Per-request timeout (s).")
    call_deadline_seconds: float = Field(
        60.0,
        gt=0,
        description="Total time one RPC call may take, first byte to last (s): a body that "
        "trickles in never trips the per-read timeout. Calls answer small bodies in well under "
        "a second; 60 s leaves a slow node its full timeout_seconds and still ends a trickle.",
    )
    scan_deadline_seconds: float = Field(
        300.0,
        gt=0,
        description="Total time one streamed getProgramAccounts scan may take, request to last "
        "byte (s). A census of a million jobs streams hundreds of MB for tens of seconds; 300 s "
        "leaves room for a slow link and a node that thinks before answering.",
    )
    max_retries: int = Field(
        5,
        ge=0,
        le=20,
        description="Retries on 429, 500/502/503/504, timeouts and connection failures, with "
        "jittered backoff (any other status is not a JSON-RPC node: no retry).",
    )
    requests_per_second: float = Field(
        20.0, gt=0, description="Client-side request rate limit, below typical provider caps."
    )
    scan_chunk_size: int = Field(
        10_000, ge=100, description="Accounts decoded per chunk while streaming a scan."
    )
    scan_method: Literal["standard", "paginated"] = Field(
        "standard",
        description="How a full read lists the program's accounts: `standard` is one "
        "getProgramAccounts per account kind (every node serves it); `paginated` walks "
        "getProgramAccountsV2 pages (Helius) until the pagination key is null, and makes "
        "reads of only the accounts changed since a slot possible. Standard by default "
        "because most nodes lack V2.",
    )
    scan_page_limit: int = Field(
        10_000,
        ge=1,
        le=10_000,
        description="Accounts a getProgramAccountsV2 page visits (its `limit`), with "
        "rpc.scan_method: paginated. 10,000 (the provider's maximum) makes the fewest "
        "requests; each page has its own retries and rpc.scan_deadline_seconds.",
    )
    urls: list[str] = Field(
        default_factory=list,
        description="Further read endpoints after rpc.url, in failover order: a request goes "
        "to the first healthy one; one that fails (after its retries) sits out "
        "rpc.failover_cooldown_seconds. Environment: a JSON list.",
    )
    send_urls: list[str] = Field(
        default_factory=list,
        description="Endpoints that also get every signed transaction (the same bytes as the "
        "read endpoint: nodes de-duplicate by signature). Empty: send through the read "
        "endpoint only.",
    )
    verify_urls: list[str] = Field(
        default_factory=list,
        description="Independent endpoints that must agree before any cleanAdmin (the market "
        "is gone there too) and any quitAdmin (the run qualifies there too; for "
        "run_timed_out their chain time agrees). Empty: the read endpoint is trusted alone "
        "(a warning at start-up and in `check`).",
    )
    verify_time_tolerance_seconds: int = Field(
        60,
        ge=0,
        description="Largest difference (s) between the read endpoint's chain time and a "
        "verify endpoint's for a time-based quitAdmin: nodes a few slots apart differ by "
        "seconds; well under quit.grace_seconds.",
    )
    failover_cooldown_seconds: float = Field(
        30.0,
        gt=0,
        description="Seconds a failed read endpoint is passed over before it is tried "
        "first again (it stays the last resort meanwhile).",
    )

    ws_url: str | None = Field(
        None,
        description="Websocket (pubsub) endpoint of the live feed. Default: rpc.url with "
        "ws(s):// (providers serve both on one address); redacted like rpc.url in logs.",
    )

    _check_url = field_validator("url")(_rpc_url)
    _check_urls = field_validator("urls", "send_urls", "verify_urls")(
        lambda urls: [_rpc_url(url) for url in urls]
    )

    def read_urls(self) -> list[str]:
        """rpc.url, then rpc.urls, each once."""
        return list(dict.fromkeys([self.url, *self.urls]))


class ChainSettings(Group):
    max_clock_lead_seconds: int = Field(
        120,
        ge=0,
        description="Time-based actions (quitAdmin run_timed_out, clean job_expired) pause "
        "while chain time leads this machine's clock by more than this (s): a healthy "
        "cluster's clock never runs ahead of real time, a lying RPC's may. Decisions still "
        "use chain time; the local clock only vetoes. Two minutes absorbs NTP drift.",
    )


class MetricsSettings(Group):
    host: str = Field("0.0.0.0", description="Address of /metrics, /healthz and /readyz.")  # noqa: S104 - a pod must be scrapeable
    port: int = Field(9108, ge=0, le=65535, description="Port of /metrics, /healthz, /readyz.")


class TaskSettings(Group):
    enabled: bool = Field(True, description="Run this task.")
    interval_seconds: float = Field(60.0, gt=0, description="Seconds between passes.")
    max_actions_per_pass: int = Field(
        10_000, ge=1, description="Upper bound on actions sent in one pass (the rest wait)."
    )


class QuitSettings(TaskSettings):
    """Expired runs -> quitAdmin (admin only)."""

    grace_seconds: int = Field(
        300,
        ge=0,
        description="Extra seconds past run.time + job.timeout before a run counts as "
        "timed out: leaves a node time to post a late result.",
    )


class ClaimSettings(TaskSettings):
    """Stopped jobs -> claim (off unless a node identity is configured)."""

    enabled: bool = Field(False, description="Claim stopped jobs as a node.")
    nft: str | None = Field(
        None, description="The node's NFT token account (metadata is derived from its mint)."
    )
    node_keypair: Path | None = Field(
        None, description="Node authority keypair file; default: the keeper keypair."
    )

    _check_nft = field_validator("nft")(lambda v: v if v is None else _pubkey(v))


class CleanSettings(TaskSettings):
    """Finished jobs -> clean (anyone) or cleanAdmin (admin, market gone)."""

    interval_seconds: float = Field(600.0, gt=0, description="Seconds between passes.")
    census_interval_seconds: float = Field(
        3600.0,
        gt=0,
        description="Deprecated and ignored (a warning at start): every full pass takes the "
        "census (gone markets, odd states, legacy and orphan jobs) from its one read of the "
        "jobs. Still accepted so existing configurations load.",
    )


class FeeSettings(Group):
    percentile: int = Field(
        75, ge=0, le=100, description="Percentile of getRecentPrioritizationFees to pay."
    )
    floor_micro_lamports: int = Field(
        1_000, ge=0, description="Lowest unit price, and the fallback when the fee source fails."
    )
    cap_micro_lamports: int = Field(
        2_000_000, ge=0, description="Highest unit price ever paid (micro-lamports per CU)."
    )
    max_fee_per_transaction_lamports: int = Field(
        200_000, ge=5_000, description="Cap on one transaction's total fee (lamports)."
    )
    hourly_budget_lamports: int = Field(
        100_000_000,
        ge=0,
        description="Rolling one-hour cap on fees plus claim rent (lamports); sending pauses.",
    )
    balance_floor_lamports: int = Field(
        50_000_000,
        ge=0,
        description="Below this balance the keeper stops sending and reports not ready.",
    )


class SendSettings(Group):
    unit_limit_margin: float = Field(
        1.2, ge=1.0, le=3.0, description="Compute-unit limit = simulated units x margin."
    )
    resend_interval_seconds: float = Field(
        2.0, gt=0, description="Re-send the same signed bytes this often until confirmed."
    )
    max_in_flight: int = Field(
        4, ge=1, le=64, description="Transactions awaiting confirmation at once."
    )
    shutdown_deadline_seconds: float = Field(
        30.0, ge=0, description="On SIGTERM, wait this long for in-flight confirmations."
    )
    retry_window_seconds: float = Field(
        120.0,
        ge=0,
        description="Seconds from a pass's first send during which a batch whose blockhash "
        "expired may be rebuilt and sent again; later, its actions count as expired and wait "
        "for the next pass. A blockhash lives about 60-90 s, so 120 s allows one rebuild and "
        "bounds a pass whose sends all drop to about two blockhash lifetimes.",
    )


class ScheduleSettings(Group):
    jitter_seconds: float = Field(
        5.0, ge=0, description="Random delay added to each tick so two keepers rarely collide."
    )
    ready_after_missed_passes: int = Field(
        3, ge=1, description="A task not successful for this many intervals fails /readyz."
    )
    pass_deadline_seconds: float = Field(
        900.0,
        gt=0,
        description="A pass still running after this many seconds is abandoned (counted, "
        "logged; in-flight transactions end as abandoned) and the next tick runs. Above a "
        "legitimate pass: scans of a million jobs, send.retry_window_seconds and a blockhash "
        "lifetime.",
    )


class DiscoverySettings(Group):
    """How the keeper learns of changes: full reads, and the live feed between them."""

    live: bool = Field(
        True,
        description="Follow the program over the RPC node's websocket between full reads "
        "(programSubscribe, the Clock sysvar, each market): actions are sent when they fall "
        "due on chain time instead of at the next poll, and full reads run only every "
        "resync_interval_seconds. Off: poll at the task intervals.",
    )
    resync_interval_seconds: float = Field(
        3600.0,
        gt=0,
        description="Seconds between full reads in live mode (one also runs at start and "
        "after every reconnect): heals any notification the feed missed. An hour keeps "
        "getProgramAccounts, the costly call, at 24 a day.",
    )
    silence_timeout_seconds: float = Field(
        30.0,
        gt=0,
        description="The watchdog: with no message at all for this long (the Clock sysvar "
        "notifies every slot, ~0.4 s) the socket counts as stalled and is reconnected.",
    )
    ping_interval_seconds: float = Field(
        20.0,
        gt=0,
        description="Websocket ping interval (s): providers close idle sockets after about "
        "10 minutes; a ping unanswered for as long also drops the connection.",
    )
    reconnect_backoff_seconds: float = Field(
        1.0,
        gt=0,
        description="First wait before reconnecting a lost feed (s); doubles per failure.",
    )
    reconnect_backoff_max_seconds: float = Field(
        60.0,
        gt=0,
        description="Longest wait between reconnect attempts (s); the keeper polls at the "
        "task intervals meanwhile.",
    )
    max_scheduled: int = Field(
        100_000,
        ge=1,
        description="Most actions held for a later due time (per task): memory stays "
        "bounded; beyond it an action is left for the next full read (counted).",
    )


class LogSettings(Group):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")
    format: Literal["auto", "json", "console"] = Field(
        "auto", description="auto: readable on a terminal, JSON lines otherwise."
    )


class LeaderElectionSettings(Group):
    """One sender among replicas: a coordination.k8s.io/v1 Lease (see the README's deploy)."""

    enabled: bool = Field(
        False,
        description="Send only while holding the Lease; followers plan and report but sign "
        "nothing. Off outside Kubernetes (one keeper); the Helm chart turns it on.",
    )
    lease_name: str = Field(
        "nosana-keeper",
        min_length=1,
        max_length=253,
        description="Name of the Lease the replicas contend for (the chart: its full name).",
    )
    namespace: str | None = Field(
        None,
        description="Namespace of the Lease; default: the pod's, read from the "
        "service-account namespace file (the chart sets it from the downward API).",
    )
    identity: str | None = Field(
        None,
        description="This keeper's name in the Lease (holderIdentity); default: the host "
        "name, which is the pod's name (the chart sets it from the downward API).",
    )
    lease_duration_seconds: int = Field(
        15,
        ge=1,
        description="How long (s) followers wait after the last renewal they saw before "
        "taking over a silent leader. client-go's default.",
    )
    renew_deadline_seconds: float = Field(
        10.0,
        gt=0,
        description="The leader stops sending when its last renewal is this old (s); it is "
        "also the timeout of every API call. Below the lease duration, so the leader stops "
        "before anyone may take over.",
    )
    retry_period_seconds: float = Field(
        2.0,
        gt=0,
        description="Seconds between renewals by the leader and attempts by followers: a "
        "released lease is taken over within one period.",
    )
    kubeconfig: Path | None = Field(
        None,
        description="kubeconfig file for reaching the API server from outside a cluster "
        "(tests, a workstation); default: the pod's in-cluster service-account config.",
    )

    @model_validator(mode="after")
    def _timings_nest(self) -> LeaderElectionSettings:
        if not self.retry_period_seconds < self.renew_deadline_seconds:
            raise ValueError("retry_period_seconds must be below renew_deadline_seconds")
        if not self.renew_deadline_seconds < self.lease_duration_seconds:
            raise ValueError("renew_deadline_seconds must be below lease_duration_seconds")
        return self


class Settings(BaseSettings):
    """Everything the keeper can be told. See config/keeper.yaml for a commented copy."""

    model_config = SettingsConfigDict(
        env_prefix="KEEPER_",
        env_nested_delimiter="_",
        env_nested_max_split=1,
        extra="forbid",
        frozen=True,
    )

    keypair: Path | None = Field(
        None,
        description="Path of a Solana CLI JSON keypair file: fee payer and signing authority. "
        "Never the key itself.",
    )
    program_id: str = Field(
        str(MAINNET.jobs_program), description="The Nosana Jobs program id (default: mainnet)."
    )
    market_admin: str = Field(
        str(MAINNET.market_admin),
        description="MARKET_ADMIN compiled into the program. Admin tasks (quitAdmin, "
        "cleanAdmin) run only when the keypair's public key equals it.",
    )
    nos_mint: str = Field(
        str(MAINNET.nos_mint), description="NOS mint: seeds the node stake PDA for claims."
    )
    rpc: RpcSettings = RpcSettings()
    chain: ChainSettings = ChainSettings()
    metrics: MetricsSettings = MetricsSettings()
    quit: QuitSettings = QuitSettings()
    claim: ClaimSettings = ClaimSettings()
    clean: CleanSettings = CleanSettings()
    fees: FeeSettings = FeeSettings()
    send: SendSettings = SendSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    log: LogSettings = LogSettings()
    leader_election: LeaderElectionSettings = LeaderElectionSettings()
    discovery: DiscoverySettings = DiscoverySettings()

    _check_keys = field_validator("program_id", "market_admin", "nos_mint")(_pubkey)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,  # noqa: ARG003 - no .env files
        file_secret_settings: PydanticBaseSettingsSource,  # noqa: ARG003 - keypair is a path
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        yaml_file = _CONFIG_FILE.get("path")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if yaml_file is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=yaml_file))
        return tuple(sources)


# Set only for the duration of load_settings(): pydantic-settings builds sources from the
# class, so the chosen file is handed over here rather than through a global default.
_CONFIG_FILE: dict[str, Path | None] = {}


def _flatten_errors(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "settings"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def _require_mapping(config_file: Path) -> None:
    """The YAML file must hold a mapping of settings (or nothing): say so plainly otherwise."""
    try:
        document = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ConfigError(
            f"cannot read configuration {config_file}: {error}",
            hint="fix the YAML syntax (compare with config/keeper.yaml)",
        ) from error
    if document is not None and not isinstance(document, dict):
        kind = "a list" if isinstance(document, list) else f"a {type(document).__name__}"
        raise ConfigError(
            f"configuration {config_file} holds {kind} at the top level, not a mapping of settings",
            hint="write settings as `key: value` lines at the top level (`rpc:` then "
            "`  url: ...`), as in config/keeper.yaml; not as `- item` lines",
        )


def load_settings(
    config_file: Path | None = None, overrides: dict[str, Any] | None = None
) -> Settings:
    """Read settings once: defaults < YAML < KEEPER_* environment < ``overrides`` (CLI)."""
    if config_file is not None and not config_file.is_file():
        raise ConfigError(
            f"config file {config_file} does not exist",
            hint="pass --config with the path of a YAML file (see config/keeper.yaml), "
            "or unset KEEPER_CONFIG",
        )
    if config_file is not None:
        _require_mapping(config_file)
    _CONFIG_FILE["path"] = config_file
    try:
        return Settings(**(overrides or {}))
    except ValidationError as error:
        raise ConfigError(
            f"invalid setting: {_flatten_errors(error)}",
            hint="correct it in the YAML file, the KEEPER_* environment variable or the CLI "
            "flag; `nosana-keeper check` validates a configuration",
        ) from error
    except (OSError, ValueError, yaml.YAMLError) as error:  # YAML syntax, unreadable files
        raise ConfigError(
            f"cannot read configuration {config_file}: {error}",
            hint="fix the YAML syntax (compare with config/keeper.yaml)",
        ) from error
    finally:
        _CONFIG_FILE.pop("path", None)
