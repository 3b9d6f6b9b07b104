"""Fault injection for the local chain: deterministic (counted), never random.

Each switch is a field of ``FaultConfig``. Counted faults come in two forms: ``*_every``
= N fires on the Nth, 2Nth, ... event since the switch was set (0 = off) and ``*_next``
= K fires on the next K events. The events counted:

- ``rate_limit``, ``server_error``: HTTP requests (a batch is one request; requests made
  only of ``localnet_*`` control calls are never faulted).
- ``drop``: sendTransaction calls that return a signature (after preflight, if any).
- ``competitor``: sendTransaction calls with a target, i.e. whose first jobs-program
  instruction has a writable account other than the fee payer. Before preflight, that
  account is deleted, as if another keeper had closed it since the scan; the program then
  fails with AccountNotInitialized (3012): at preflight (-32002), or as a landed failed
  transaction when preflight is skipped.
- ``fee_source_error``: getRecentPrioritizationFees calls (each call in a batch counts).
  A faulted call answers a JSON-RPC error (-32603, HTTP 200), as when a node's
  prioritization-fee cache fails; every other method answers as usual.
- ``ws_refuse``: websocket upgrade requests. A faulted one is answered HTTP 503 and no
  socket opens (``ws_refuse_every=1`` refuses every attempt while set).
- ``ws_drop``: websocket notifications about to be sent. A faulted one is lost.
- ``ws_stall``: websocket messages about to be sent (answers and notifications). A faulted
  one is lost and its socket goes silent for good: it answers nothing, notifies nothing
  and pongs no ping, while the TCP connection stays open (a hung node or a dead NAT
  path). Only that socket: new connections work.
- ``ws_close``: websocket messages about to be sent. A faulted one is not sent; its socket
  is closed instead (close code 1011).

``land_delay_ms`` is not counted either: while set, an accepted transaction lands that
much later (executed against the ledger as it is then; a repeat of one still on its way
is ignored, and one whose blockhash expired meanwhile never lands), as when a leader is
slow to include it. ``clock_skew_seconds`` offsets the chain clock while set. Switch
faults in-process (``Faults.set``), over JSON-RPC (``localnet_setFaults``) or from the
command line (``parse_fault_specs``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import TYPE_CHECKING, Final, Protocol

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping


@dataclass(frozen=True, slots=True)
class FaultConfig:
    rate_limit_every: int = 0  # HTTP 429 with Retry-After on every Nth request
    rate_limit_next: int = 0  # HTTP 429 on the next K requests
    retry_after_seconds: int = 1  # the Retry-After header of a 429
    server_error_every: int = 0  # HTTP 5xx on every Nth request
    server_error_next: int = 0  # HTTP 5xx on the next K requests
    server_error_status: int = 503
    latency_ms: int = 0  # delay before answering each request
    drop_every: int = 0  # every Nth sendTransaction returns a signature, never lands
    drop_next: int = 0  # the next K sendTransaction return a signature, never land
    competitor_every: int = 0  # every Nth send: another keeper closes the target first
    competitor_next: int = 0  # the next K sends: another keeper closes the target first
    fee_source_error_every: int = 0  # every Nth getRecentPrioritizationFees: JSON-RPC error
    fee_source_error_next: int = 0  # the next K getRecentPrioritizationFees: JSON-RPC error
    clock_skew_seconds: int = 0  # chain clock offset from its unskewed course
    ws_refuse_every: int = 0  # every Nth websocket upgrade: HTTP 503, no socket
    ws_refuse_next: int = 0  # the next K websocket upgrades: HTTP 503, no socket
    ws_drop_every: int = 0  # every Nth websocket notification is lost
    ws_drop_next: int = 0  # the next K websocket notifications are lost
    ws_stall_every: int = 0  # every Nth websocket message: its socket goes silent for good
    ws_stall_next: int = 0  # the next K websocket messages: their sockets go silent for good
    ws_close_every: int = 0  # every Nth websocket message: its socket is closed instead
    ws_close_next: int = 0  # the next K websocket messages: their sockets are closed instead
    land_delay_ms: int = 0  # accepted transactions land this much later


FAULT_NAMES: Final = tuple(field.name for field in fields(FaultConfig))
WEBSOCKET_FAULTS: Final = ("ws_refuse", "ws_drop", "ws_stall", "ws_close")
_MIN_SERVER_ERROR: Final = 500
_MAX_SERVER_ERROR: Final = 599


class FaultConfigError(ValueError):
    """A fault switch with an unknown name or an invalid value."""


def fault_config(values: Mapping[str, object], base: FaultConfig | None = None) -> FaultConfig:
    """``base`` (default: all off) with ``values`` switched; names and values validated."""
    unknown = sorted(set(values) - set(FAULT_NAMES))
    if unknown:
        raise FaultConfigError(
            f"unknown fault switch(es) {', '.join(unknown)}; known: {', '.join(FAULT_NAMES)}"
        )
    checked: dict[str, int] = {}
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int):
            raise FaultConfigError(f"fault switch {name} needs an integer, got {value!r}")
        if value < 0 and name != "clock_skew_seconds":
            raise FaultConfigError(f"fault switch {name} cannot be negative, got {value}")
        checked[name] = value
    config = replace(base or FaultConfig(), **checked)
    if not _MIN_SERVER_ERROR <= config.server_error_status <= _MAX_SERVER_ERROR:
        raise FaultConfigError(
            f"server_error_status must be a 5xx status, got {config.server_error_status}"
        )
    return config


def parse_fault_specs(specs: Iterable[str]) -> FaultConfig:
    """``["rate_limit_every=5", "latency_ms=50"]`` (CLI flags) -> FaultConfig."""
    values: dict[str, object] = {}
    for spec in specs:
        name, _, text = spec.partition("=")
        try:
            values[name.strip()] = int(text)
        except ValueError as error:
            raise FaultConfigError(f"fault spec {spec!r} is not NAME=INTEGER") from error
    return fault_config(values)


class SkewableClock(Protocol):
    skew_seconds: int


@dataclass(frozen=True, slots=True)
class HttpFault:
    status: int
    retry_after_seconds: int | None  # set for 429


class _Counter:
    """Decides whether the next event of one kind is faulted under every/next."""

    def __init__(self) -> None:
        self.seen = 0  # events since the switch was last set
        self.remaining_next = 0
        self.fired = 0

    def reset(self, next_count: int) -> None:
        self.seen = 0
        self.remaining_next = next_count

    def fires(self, every: int) -> bool:
        self.seen += 1
        hit = self.remaining_next > 0 or (every > 0 and self.seen % every == 0)
        if self.remaining_next > 0:
            self.remaining_next -= 1
        if hit:
            self.fired += 1
        return hit


class Faults:
    """The switches in force and the counts of faults injected so far."""

    def __init__(
        self, config: FaultConfig | None = None, clock: SkewableClock | None = None
    ) -> None:
        self._clock = clock
        self._counters = {
            kind: _Counter()
            for kind in (
                "rate_limit",
                "server_error",
                "drop",
                "competitor",
                "fee_source_error",
                *WEBSOCKET_FAULTS,
            )
        }
        self.config = FaultConfig()
        self.apply(config or FaultConfig())

    def attach_clock(self, clock: SkewableClock) -> None:
        self._clock = clock
        clock.skew_seconds = self.config.clock_skew_seconds

    def apply(self, config: FaultConfig) -> None:
        """Replace every switch; counters of switches given anew restart."""
        old = self.current()
        self.config = config
        for kind, counter in self._counters.items():
            every, following = getattr(config, f"{kind}_every"), getattr(config, f"{kind}_next")
            if (every, following) != (getattr(old, f"{kind}_every"), getattr(old, f"{kind}_next")):
                counter.reset(following)
        if self._clock is not None:
            self._clock.skew_seconds = config.clock_skew_seconds

    def set(self, **switches: int) -> FaultConfig:
        """Switch some faults (others keep their value), e.g. ``set(rate_limit_next=2)``."""
        self.apply(fault_config(switches, self.current()))
        return self.config

    def clear(self) -> None:
        self.apply(FaultConfig())

    def current(self) -> FaultConfig:
        """The config, with the ``*_next`` counts that are left and the clock's real skew."""
        left = {f"{kind}_next": counter.remaining_next for kind, counter in self._counters.items()}
        if self._clock is not None:
            left["clock_skew_seconds"] = self._clock.skew_seconds
        return replace(self.config, **left)

    # -- events ---------------------------------------------------------------------------

    def http_fault(self) -> HttpFault | None:
        """Count one HTTP request; the fault to answer it with, if any (429 before 5xx)."""
        config = self.config
        if self._counters["rate_limit"].fires(config.rate_limit_every):
            return HttpFault(429, config.retry_after_seconds)
        if self._counters["server_error"].fires(config.server_error_every):
            return HttpFault(config.server_error_status, None)
        return None

    def drops_transaction(self) -> bool:
        """Count one accepted send; True if it must never land."""
        return self._counters["drop"].fires(self.config.drop_every)

    def competitor_strikes(self) -> bool:
        """Count one send with a target; True if another keeper closes the target first."""
        return self._counters["competitor"].fires(self.config.competitor_every)

    def fee_source_fails(self) -> bool:
        """Count one getRecentPrioritizationFees call; True if it must answer an error."""
        return self._counters["fee_source_error"].fires(self.config.fee_source_error_every)

    def refuses_websocket(self) -> bool:
        """Count one websocket upgrade request; True if it must be refused."""
        return self._counters["ws_refuse"].fires(self.config.ws_refuse_every)

    def drops_notification(self) -> bool:
        """Count one websocket notification; True if it must be lost."""
        return self._counters["ws_drop"].fires(self.config.ws_drop_every)

    def stalls_socket(self) -> bool:
        """Count one outgoing websocket message; True if its socket goes silent for good."""
        return self._counters["ws_stall"].fires(self.config.ws_stall_every)

    def closes_socket(self) -> bool:
        """Count one outgoing websocket message; True if its socket is closed instead."""
        return self._counters["ws_close"].fires(self.config.ws_close_every)

    @property
    def latency_seconds(self) -> float:
        return self.config.latency_ms / 1000

    @property
    def land_delay_seconds(self) -> float:
        return self.config.land_delay_ms / 1000

    @property
    def injected(self) -> dict[str, int]:
        """How many faults of each kind fired so far."""
        return {kind: counter.fired for kind, counter in self._counters.items()}

    def snapshot(self) -> dict[str, object]:
        """Switches in force (``*_next`` = what is left) and counts injected: JSON-ready."""
        return {**asdict(self.current()), "injected": self.injected}
