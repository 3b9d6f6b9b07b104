"""Leader election on a ``coordination.k8s.io/v1`` Lease: only the leader sends.

kubernetes_asyncio talks to the API server; the election loop is ours, because its own
``leaderelection`` misses what a sender needs (as client-go's Python ports do): every API
call here times out before the renew deadline, the leader stops sending the moment its last
renewal is older than the renew deadline (checked when a send starts, not by a loop that
may be late), and the lease is released on shutdown so a standby takes over within one
retry period. Like client-go, followers time a leader by their own monotonic clock from
the moment they saw its record change, never by comparing wall clocks across nodes.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import aiohttp
import structlog
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.config.config_exception import ConfigException

from keeper.errors import ConfigError
from keeper.service.metrics import Metrics
from keeper.service.settings import LeaderElectionSettings

log = structlog.get_logger("keeper")

NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
HTTP_NOT_FOUND = 404
HTTP_CONFLICT = 409
# A released lease says "expired a second ago": client-go's ReleaseOnCancel does the same.
RELEASED_DURATION_SECONDS = 1


class Leadership(Protocol):
    """What the rest of the service asks: may a send start now, and what to tell /readyz."""

    def may_send(self) -> bool: ...

    def role(self) -> str: ...


@dataclass(frozen=True, slots=True)
class SoleKeeper:
    """Leader election off: this keeper is the only sender."""

    def may_send(self) -> bool:
        return True

    def role(self) -> str:
        return "leader"


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    """The Lease's spec, as the election reads and writes it."""

    holder: str | None
    duration_s: int
    acquired: datetime | None
    renewed: datetime | None
    transitions: int


@dataclass(frozen=True, slots=True)
class StoredLease:
    record: LeaseRecord
    resource_version: str


class LeaseApi(Protocol):
    """The three Lease calls the election makes; each must return within ``timeout_s``."""

    async def get(self, timeout_s: float) -> StoredLease | None: ...

    async def create(self, record: LeaseRecord, timeout_s: float) -> StoredLease: ...

    async def replace(
        self, record: LeaseRecord, resource_version: str, timeout_s: float
    ) -> StoredLease: ...

    async def aclose(self) -> None: ...


class LeaseLost(Exception):
    """Another keeper wrote the Lease first (409 Conflict): not an error, just not ours."""


def next_record(
    stored: LeaseRecord | None, me: str, now: datetime, duration_s: int, *, expired: bool
) -> LeaseRecord | None:
    """The record to write to become or stay leader, or None while another keeper holds it.

    ``expired``: the holder's record has not changed for its lease duration (as this keeper
    timed it). An empty holder is a released lease, free at once.
    """
    if stored is None:
        return LeaseRecord(me, duration_s, now, now, 0)
    if stored.holder == me:
        return replace(stored, duration_s=duration_s, renewed=now)
    if stored.holder and not expired:
        return None
    return LeaseRecord(me, duration_s, now, now, stored.transitions + 1)


@dataclass(slots=True)
class LeaseElector:
    """Contends for one Lease; ``may_send`` is the fence every send start consults."""

    api: LeaseApi
    identity: str
    settings: LeaderElectionSettings
    metrics: Metrics
    monotonic: Callable[[], float] = time.monotonic
    wall: Callable[[], datetime] = lambda: datetime.now(UTC)
    # Monotonic time at which the last successful write began: the lease runs from there.
    _renewed_at: float | None = None
    _stored: StoredLease | None = None
    _observed_at: float = 0.0  # when this keeper saw the stored record change
    _stopping: bool = False
    _published: bool | None = None
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    # -- the fence -------------------------------------------------------------------------

    def remaining_s(self) -> float:
        """Seconds the lease is still ours by the followers' reckoning (0 when not ours)."""
        if self._renewed_at is None or self._stopping:
            return 0.0
        left = self._renewed_at + self.settings.lease_duration_seconds - self.monotonic()
        return max(left, 0.0)

    def may_send(self) -> bool:
        """True while the lease stays ours for longer than a send can take to start.

        A send may start only while the last renewal is younger than the renew deadline,
        that is while more than (lease duration - renew deadline) of the lease remain: the
        margin a transaction has to be signed and handed to the RPC before a follower may
        take over.
        """
        margin = self.settings.lease_duration_seconds - self.settings.renew_deadline_seconds
        return self.remaining_s() > margin

    def role(self) -> str:
        return "leader" if self.may_send() else "standby"

    # -- the loop --------------------------------------------------------------------------

    async def run(self) -> None:
        """Acquire, then renew every retry period, until ``stop``; never raises."""
        while not self._stopping:
            await self.attempt()
            self.publish()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.retry_period_seconds)

    def stop(self) -> None:
        """No send starts from now on; the loop ends after the attempt under way (if any)."""
        self._stopping = True
        self._wake.set()

    async def attempt(self) -> None:
        """One try to acquire or renew, bounded so it ends before the renew deadline."""
        started = self.monotonic()
        if self.remaining_s() <= 0:
            self._renewed_at = None  # the lease ran out: from here on a follower's attempt
        was_leader = self._renewed_at is not None
        try:
            async with asyncio.timeout(self._attempt_budget(started)):
                ours = await self._try_acquire_or_renew(started)
        except TimeoutError:
            self._failed(was_leader, "timeout")
        except LeaseLost:
            self._renewed_at = None
            self._failed(was_leader, "conflict")
        except (ApiException, aiohttp.ClientError, OSError, ValueError) as error:
            self._failed(was_leader, "api_error", error)
        except Exception as error:  # the loop must outlive any client surprise
            log.exception("lease attempt crashed", lease=self.settings.lease_name)
            self._failed(was_leader, "api_error", error)
        else:
            self._renewed_at = started if ours else None

    def _attempt_budget(self, started: float) -> float:
        """The leader's attempt must end before its renew deadline; a follower's within one."""
        deadline = self.settings.renew_deadline_seconds
        if self._renewed_at is None:
            return deadline
        return max(self._renewed_at + deadline - started, 0.05)

    def _failed(self, was_leader: bool, reason: str, error: Exception | None = None) -> None:
        if was_leader:
            self.metrics.lease_renew_failures.labels(reason=reason).inc()
        log.warning(
            "lease attempt failed",
            lease=self.settings.lease_name,
            reason=reason,
            error=None if error is None else f"{type(error).__name__}: {error}",
            leader=was_leader,
        )

    async def _try_acquire_or_renew(self, started: float) -> bool:
        timeout = self._attempt_budget(started)
        stored = await self.api.get(timeout)
        self._observe(stored)
        wanted = next_record(
            None if stored is None else stored.record,
            self.identity,
            self.wall(),
            self.settings.lease_duration_seconds,
            expired=self._observed_expired(),
        )
        if wanted is None:
            return False
        if stored is None:
            self._stored = await self.api.create(wanted, timeout)
        else:
            self._stored = await self.api.replace(wanted, stored.resource_version, timeout)
        self._observed_at = self.monotonic()
        return True

    def _observe(self, stored: StoredLease | None) -> None:
        previous = None if self._stored is None else self._stored.record
        if stored is None or stored.record != previous:
            self._observed_at = self.monotonic()
        self._stored = stored

    def _observed_expired(self) -> bool:
        if self._stored is None:
            return True
        duration = self._stored.record.duration_s
        return self._observed_at + duration <= self.monotonic()

    def publish(self) -> None:
        """The gauge and transition counter follow what ``may_send`` says now."""
        leading = self.may_send()
        self.metrics.leader.set(int(leading))
        if leading == self._published:
            return
        if self._published is not None or leading:
            change = "acquired" if leading else "lost"
            self.metrics.leadership_transitions.labels(change=change).inc()
            log.info(
                "leadership changed",
                change=change,
                lease=self.settings.lease_name,
                identity=self.identity,
                holder=None if self._stored is None else self._stored.record.holder,
            )
        self._published = leading

    # -- shutdown --------------------------------------------------------------------------

    async def release(self) -> None:
        """Stop sending now, then hand the lease back so a standby takes it at once."""
        held = self._renewed_at is not None and (
            self._renewed_at + self.settings.lease_duration_seconds > self.monotonic()
        )
        self.stop()
        self.metrics.leader.set(0)
        stored = self._stored
        if not held or stored is None or stored.record.holder != self.identity:
            return
        now = self.wall()
        released = LeaseRecord(None, RELEASED_DURATION_SECONDS, now, now, stored.record.transitions)
        try:
            async with asyncio.timeout(self.settings.retry_period_seconds):
                await self.api.replace(
                    released, stored.resource_version, self.settings.retry_period_seconds
                )
        except (TimeoutError, LeaseLost, ApiException, aiohttp.ClientError, OSError) as error:
            log.warning("lease release failed: the standby waits out the lease", error=str(error))
            return
        self.metrics.leadership_transitions.labels(change="released").inc()
        log.info("lease released", lease=self.settings.lease_name, identity=self.identity)


# -- the Kubernetes side ------------------------------------------------------------------


@dataclass(slots=True)
class KubernetesLeases:
    """LeaseApi on kubernetes_asyncio's CoordinationV1Api, for one Lease."""

    api_client: k8s.ApiClient
    name: str
    namespace: str

    async def get(self, timeout_s: float) -> StoredLease | None:
        api = k8s.CoordinationV1Api(self.api_client)
        try:
            lease = await api.read_namespaced_lease(
                self.name, self.namespace, _request_timeout=timeout_s
            )
        except ApiException as error:
            if error.status == HTTP_NOT_FOUND:
                return None
            raise
        return _stored(lease)

    async def create(self, record: LeaseRecord, timeout_s: float) -> StoredLease:
        api = k8s.CoordinationV1Api(self.api_client)
        body = self._lease(record, None)
        try:
            lease = await api.create_namespaced_lease(
                self.namespace, body, _request_timeout=timeout_s
            )
        except ApiException as error:
            if error.status == HTTP_CONFLICT:  # created by another keeper meanwhile
                raise LeaseLost from error
            raise
        return _stored(lease)

    async def replace(
        self, record: LeaseRecord, resource_version: str, timeout_s: float
    ) -> StoredLease:
        api = k8s.CoordinationV1Api(self.api_client)
        body = self._lease(record, resource_version)
        try:
            lease = await api.replace_namespaced_lease(
                self.name, self.namespace, body, _request_timeout=timeout_s
            )
        except ApiException as error:
            if error.status == HTTP_CONFLICT:  # written by another keeper since our read
                raise LeaseLost from error
            raise
        return _stored(lease)

    async def aclose(self) -> None:
        await self.api_client.close()

    def _lease(self, record: LeaseRecord, resource_version: str | None) -> k8s.V1Lease:
        return k8s.V1Lease(
            metadata=k8s.V1ObjectMeta(
                name=self.name, namespace=self.namespace, resource_version=resource_version
            ),
            spec=k8s.V1LeaseSpec(
                holder_identity=record.holder,
                lease_duration_seconds=record.duration_s,
                acquire_time=record.acquired,
                renew_time=record.renewed,
                lease_transitions=record.transitions,
            ),
        )


def _stored(lease: k8s.V1Lease) -> StoredLease:
    spec = lease.spec
    record = LeaseRecord(
        holder=spec.holder_identity or None,
        duration_s=int(spec.lease_duration_seconds or 0),
        acquired=spec.acquire_time,
        renewed=spec.renew_time,
        transitions=int(spec.lease_transitions or 0),
    )
    return StoredLease(record, str(lease.metadata.resource_version))


def lease_namespace(settings: LeaderElectionSettings, namespace_file: Path = NAMESPACE_FILE) -> str:
    if settings.namespace:
        return settings.namespace
    try:
        return namespace_file.read_text().strip()
    except OSError as error:
        raise ConfigError(
            f"leader election has no namespace ({namespace_file} is unreadable: {error})",
            hint="set KEEPER_LEADER_ELECTION_NAMESPACE (the chart sets it from the pod's "
            "namespace), or disable leader election",
        ) from error


def lease_identity(settings: LeaderElectionSettings) -> str:
    return settings.identity or socket.gethostname()


async def connect(settings: LeaderElectionSettings) -> KubernetesLeases:
    """An API client from the kubeconfig setting, or the pod's service account."""
    configuration = k8s.Configuration()
    try:
        if settings.kubeconfig is not None:
            await k8s_config.load_kube_config(
                config_file=str(settings.kubeconfig), client_configuration=configuration
            )
        else:
            k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except (ConfigException, OSError, ValueError) as error:
        where = settings.kubeconfig or "the in-cluster service account"
        raise ConfigError(
            f"leader election cannot reach the Kubernetes API through {where}: {error}",
            hint="run in a pod whose ServiceAccount token is mounted (the chart does this when "
            "leader election is on), set KEEPER_LEADER_ELECTION_KUBECONFIG, or disable leader "
            "election",
        ) from error
    return KubernetesLeases(
        k8s.ApiClient(configuration), settings.lease_name, lease_namespace(settings)
    )


async def start_election(
    settings: LeaderElectionSettings, metrics: Metrics
) -> tuple[LeaseElector, asyncio.Task[None]]:
    """Connect and start contending in the background (a standby until the lease is ours)."""
    leases = await connect(settings)
    elector = LeaseElector(leases, lease_identity(settings), settings, metrics)
    elector.publish()
    log.info(
        "leader election on",
        lease=f"{leases.namespace}/{leases.name}",
        identity=elector.identity,
        lease_duration_s=settings.lease_duration_seconds,
        renew_deadline_s=settings.renew_deadline_seconds,
        retry_period_s=settings.retry_period_seconds,
    )
    return elector, asyncio.create_task(elector.run(), name="leader-election")


async def stop_election(elector: LeaseElector, task: asyncio.Task[None]) -> None:
    """Stop sending at once, let a write under way finish (its budget bounds it), release."""
    elector.stop()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await elector.release()
    await elector.api.aclose()
