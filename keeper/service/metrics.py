"""Every Prometheus metric of the keeper, in one place.

One ``nosana_keeper_`` prefix, base units (seconds, lamports), ``_total`` counters, labels
from enums only (task, action, reason, outcome, RPC method) — never a pubkey. Each help
text is also the README's row (a test checks the README lists every metric).
Built on a registry passed in, so each test gets a fresh one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

PREFIX = "nosana_keeper"
SCANNED_KINDS = ("market", "run", "job")  # the account kinds a full read scans

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120)
_DENSITY_BUCKETS = (1, 2, 4, 6, 8, 10, 13, 16, 19, 20, 21, 22, 25)
_DUE_BUCKETS = (0.5, 1, 2, 3, 5, 10, 20, 30, 60, 300, 600, 1800, 3600)
_SCAN_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600)


class Metrics:
    """The keeper's metrics as attributes of one object."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        p = PREFIX
        r = registry
        self.build_info = Info(f"{p}_build", "Version of nosana-keeper.", registry=r)
        self.scans = Counter(
            f"{p}_scans_total",
            "Scans run, by task and outcome (ok, error).",
            ["task", "outcome"],
            registry=r,
        )
        self.scan_duration = Histogram(
            f"{p}_scan_duration_seconds",
            "Duration of a task's scan and decision (s).",
            ["task"],
            buckets=_SCAN_BUCKETS,
            registry=r,
        )
        self.accounts_found = Gauge(
            f"{p}_accounts_found",
            "Accounts seen by the last pass, by task and kind.",
            ["task", "kind"],
            registry=r,
        )
        self.accounts_waiting = Gauge(
            f"{p}_accounts_waiting",
            "Accounts the last pass found needing action, by task.",
            ["task"],
            registry=r,
        )
        self.actions_planned = Counter(
            f"{p}_actions_planned_total",
            "Actions decided, by action and reason.",
            ["action", "reason"],
            registry=r,
        )
        self.actions_sent = Counter(
            f"{p}_actions_sent_total",
            "Actions sent in a transaction, by action.",
            ["action"],
            registry=r,
        )
        self.actions_confirmed = Counter(
            f"{p}_actions_confirmed_total",
            "Actions confirmed on chain, by action and reason.",
            ["action", "reason"],
            registry=r,
        )
        self.actions_failed = Counter(
            f"{p}_actions_failed_total",
            "Actions that failed, by action and failure reason.",
            ["action", "reason"],
            registry=r,
        )
        self.skips = Counter(
            f"{p}_skips_total",
            "Accounts left alone, by task and reason.",
            ["task", "reason"],
            registry=r,
        )
        self.instructions_per_transaction = Histogram(
            f"{p}_instructions_per_transaction",
            "Maintenance instructions per transaction sent.",
            ["action"],
            buckets=_DENSITY_BUCKETS,
            registry=r,
        )
        self.transaction_density_ratio = Gauge(
            f"{p}_transaction_density_ratio",
            "Instructions per transaction in the last pass over the maximum for its workload.",
            ["action"],
            registry=r,
        )
        self.confirmation_latency = Histogram(
            f"{p}_confirmation_latency_seconds",
            "From first send to confirmation (s).",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.transactions = Counter(
            f"{p}_transactions_total",
            "Transactions by outcome (confirmed, expired, failed...).",
            ["outcome"],
            registry=r,
        )
        self.reclaimed_lamports = Counter(
            f"{p}_reclaimed_lamports_total",
            "Rent returned to payers by confirmed closes.",
            ["action"],
            registry=r,
        )
        self.fees_paid_lamports = Counter(
            f"{p}_fees_paid_lamports_total",
            "Transaction fees paid by the keeper (lamports).",
            registry=r,
        )
        self.claim_rent_lamports = Counter(
            f"{p}_claim_rent_lamports_total",
            "Rent paid for run accounts created by claims.",
            registry=r,
        )
        self.priority_fee = Gauge(
            f"{p}_priority_fee_micro_lamports",
            "Compute-unit price chosen for the last send.",
            registry=r,
        )
        self.priority_fee_fallbacks = Counter(
            f"{p}_priority_fee_fallbacks_total",
            "Times the fee source failed and the floor price was used.",
            registry=r,
        )
        self.rpc_requests = Counter(
            f"{p}_rpc_requests_total",
            "RPC requests by method and outcome.",
            ["method", "outcome"],
            registry=r,
        )
        self.rpc_latency = Histogram(
            f"{p}_rpc_request_duration_seconds",
            "RPC request latency by method (s).",
            ["method"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.last_success = Gauge(
            f"{p}_last_success_timestamp_seconds",
            "Unix time of a task's last successful pass.",
            ["task"],
            registry=r,
        )
        self.pass_errors = Counter(
            f"{p}_pass_errors_total",
            "Passes that ended in an error, by task.",
            ["task"],
            registry=r,
        )
        self.passes_over_deadline = Counter(
            f"{p}_passes_over_deadline_total",
            "Passes abandoned at schedule.pass_deadline_seconds, by task.",
            ["task"],
            registry=r,
        )
        self.chain_time = Gauge(
            f"{p}_chain_time_seconds",
            "The cluster's Clock unix_timestamp at the last read.",
            registry=r,
        )
        self.chain_time_lag = Gauge(
            f"{p}_chain_time_lag_seconds",
            "Wall time minus chain time at the last read (s).",
            registry=r,
        )
        self.chain_clock_lead = Gauge(
            f"{p}_chain_clock_lead_seconds",
            "Chain time minus this machine's clock at the last read (s): positive when the "
            "chain runs ahead.",
            registry=r,
        )
        self.time_based_paused = Gauge(
            f"{p}_time_based_actions_paused",
            "1 while time-based actions (quitAdmin run_timed_out, clean job_expired) are "
            "withheld, by cause (clock_ahead).",
            ["cause"],
            registry=r,
        )
        self.rpc_endpoint_up = Gauge(
            f"{p}_rpc_endpoint_up",
            "1 while an RPC endpoint answers, 0 once it failed after its retries, by role "
            "(read, send, verify) and position in its list.",
            ["role", "endpoint"],
            registry=r,
        )
        self.rpc_endpoint_failures = Counter(
            f"{p}_rpc_endpoint_failures_total",
            "Requests an RPC endpoint failed after its retries, by role and position.",
            ["role", "endpoint"],
            registry=r,
        )
        self.balance_lamports = Gauge(
            f"{p}_balance_lamports",
            "The keeper's fee-payer balance.",
            registry=r,
        )
        self.sending_paused = Gauge(
            f"{p}_sending_paused",
            "1 while sending is paused, by cause (balance_floor, fee_budget).",
            ["cause"],
            registry=r,
        )
        self.orphan_jobs = Gauge(
            f"{p}_orphan_jobs",
            "Queued jobs with no run in no market queue (never touched).",
            registry=r,
        )
        self.legacy_jobs = Gauge(
            f"{p}_legacy_jobs",
            "Legacy 232-byte jobs nothing can close.",
            registry=r,
        )
        self.backlog_actions = Gauge(
            f"{p}_backlog_actions",
            "Due actions the last pass left for later (beyond max_actions_per_pass), "
            "by task and reason.",
            ["task", "reason"],
            registry=r,
        )
        self.backlog_lamports = Gauge(
            f"{p}_backlog_lamports",
            "Lamports held by the accounts of the backlog, by task and reason.",
            ["task", "reason"],
            registry=r,
        )
        self.scan_duplicates = Counter(
            f"{p}_scan_duplicates_total",
            "Duplicate entries dropped from getProgramAccounts answers, by account kind.",
            ["kind"],
            registry=r,
        )
        for kind in SCANNED_KINDS:  # present from the start: a rate of zero, not no data
            self.scan_duplicates.labels(kind=kind)
        self.leader = Gauge(
            f"{p}_leader",
            "1 while this keeper holds the lease and may send, else 0 (1 without election).",
            registry=r,
        )
        self.leadership_transitions = Counter(
            f"{p}_leadership_transitions_total",
            "Changes of this keeper's leadership, by change (acquired, lost, released).",
            ["change"],
            registry=r,
        )
        self.lease_renew_failures = Counter(
            f"{p}_lease_renew_failures_total",
            "Failed lease renewals by the leader, by reason (timeout, conflict, api_error).",
            ["reason"],
            registry=r,
        )
        # Every change and reason at 0 from the start: a rate over them is 0, not absent.
        for change in ("acquired", "lost", "released"):
            self.leadership_transitions.labels(change=change)
        for reason in ("timeout", "conflict", "api_error"):
            self.lease_renew_failures.labels(reason=reason)
        self._live_metrics()

    def _live_metrics(self) -> None:
        """Discovery's: bytes moved, full reads, the live feed and due-to-confirmed."""
        p = PREFIX
        r = self.registry
        self.rpc_response_bytes = Counter(
            f"{p}_rpc_response_bytes_total",
            "Response bytes received, by RPC method (HTTP bodies; websocket messages under "
            "their notification method).",
            ["method"],
            registry=r,
        )
        self.full_read_accounts = Gauge(
            f"{p}_full_read_accounts",
            "Accounts the last full read returned, by kind (market, run, job).",
            ["kind"],
            registry=r,
        )
        self.updates = Counter(
            f"{p}_account_updates_total",
            "Program accounts received, by source (full_read, live).",
            ["source"],
            registry=r,
        )
        self.live_connected = Gauge(
            f"{p}_live_feed_connected",
            "1 while the live feed's websocket is subscribed and followed, else 0 (polling).",
            registry=r,
        )
        self.live_mode = Gauge(
            f"{p}_live_mode",
            "1 when the service runs with discovery.live (it should follow the feed), else 0.",
            registry=r,
        )
        self.live_reconnects = Counter(
            f"{p}_live_feed_reconnects_total",
            "Live feed connections lost or attempts refused (closed, refused, silent past "
            "the watchdog); each is followed by a reconnect after the backoff.",
            registry=r,
        )
        self.live_notifications = Counter(
            f"{p}_live_notifications_total",
            "Live feed notifications, by account kind (job, run, market, clock, closed, other).",
            ["kind"],
            registry=r,
        )
        self.resyncs = Counter(
            f"{p}_resyncs_total",
            "Resyncs in live mode, by cause (start, reconnect, interval, market_closed, "
            "leadership, book_horizon).",
            ["cause"],
            registry=r,
        )
        self.resync_reads = Counter(
            f"{p}_resync_reads_total",
            "Live-mode resyncs by the read they made: full (every account) or changed (only "
            "the accounts written since the previous read: interval resyncs with "
            "rpc.scan_method paginated).",
            ["kind"],
            registry=r,
        )
        self.live_scheduled = Gauge(
            f"{p}_live_scheduled_actions",
            "Actions held by the live feed for their due time (chain time), by task.",
            ["task"],
            registry=r,
        )
        self.live_overflow = Counter(
            f"{p}_live_unscheduled_total",
            "Actions not held because discovery.max_scheduled was reached, by task (a full "
            "read finds them: at the latest when chain time reaches the first one's due time).",
            ["task"],
            registry=r,
        )
        self.due_to_confirmed = Histogram(
            f"{p}_due_to_confirmed_seconds",
            "From an action's due time to its confirmation, both on chain time (s), by task.",
            ["task"],
            buckets=_DUE_BUCKETS,
            registry=r,
        )
        self.dry_run = Gauge(
            f"{p}_dry_run",
            "1 when the keeper runs with --dry-run (sends nothing: no balance is needed).",
            registry=r,
        )
        for source in ("full_read", "live"):
            self.updates.labels(source=source)
        for cause in (
            "start",
            "reconnect",
            "interval",
            "market_closed",
            "leadership",
            "book_horizon",
        ):
            self.resyncs.labels(cause=cause)
        for kind in ("full", "changed"):
            self.resync_reads.labels(kind=kind)

    def count_response_bytes(self, method: str, count: int) -> None:
        self.rpc_response_bytes.labels(method=method).inc(count)

    def record_backlog(
        self,
        task: str,
        reasons: Iterable[str],
        actions: Mapping[str, int],
        lamports: Mapping[str, int],
    ) -> None:
        """The backlog of ``task``'s last pass, for each of its action ``reasons`` (zero
        when none waits, so a cleared backlog reads 0, not stale or absent)."""
        for reason in {*reasons, *actions}:
            self.backlog_actions.labels(task=task, reason=reason).set(actions.get(reason, 0))
            self.backlog_lamports.labels(task=task, reason=reason).set(lamports.get(reason, 0))


def new_metrics(registry: CollectorRegistry | None = None) -> Metrics:
    return Metrics(registry or CollectorRegistry())
