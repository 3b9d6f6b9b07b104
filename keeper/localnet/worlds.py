"""The named, seeded worlds of the local chain: ``demo``, ``scale`` and ``empty``.

``demo`` holds one of every case the keeper must act on and every case it must leave
alone, each labelled with the expected outcome (``World.expectations``). Its times are
relative to the world's chain clock (a fixed date in 2026, far from wall time). The run
cases assume the keeper's default quit grace of ``GRACE_SECONDS``.

``scale`` is ``jobs`` Done jobs (default 1,000,000) spread over ``markets`` markets and
``payers`` payers, ``due_fraction`` of them past their market's expiration: built with
numpy in a few seconds.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from keeper.errors import ConfigError
from keeper.localnet.builder import DEFAULT_CHAIN_TIME, World, WorldBuilder, minimum_balance
from keeper.localnet.bulk_jobs import JobColumns, key_column
from keeper.localnet.model import Account
from keeper.program.layouts import JOB_DISCRIMINATOR
from keeper.program.state import JobState

if TYPE_CHECKING:
    from collections.abc import Callable

    from solders.pubkey import Pubkey

__all__ = [
    "GRACE_SECONDS",
    "WORLDS",
    "World",
    "build_demo",
    "build_empty",
    "build_scale",
    "load_world",
]

MINUTE: Final = 60
HOUR: Final = 3_600
DAY: Final = 86_400
NOS: Final = 1_000_000  # NOS has 6 decimals
GRACE_SECONDS: Final = 300  # the keeper's default quitAdmin grace

QUEUED, DONE, STOPPED = JobState.QUEUED, JobState.DONE, JobState.STOPPED


def build_empty(
    *, seed: int = 0, unix_timestamp: int = DEFAULT_CHAIN_TIME, market_admin: Pubkey | None = None
) -> World:
    """Just the programs and the keeper's funded wallet."""
    return WorldBuilder(
        name="empty", seed=seed, unix_timestamp=unix_timestamp, market_admin=market_admin
    ).build()


def build_demo(
    *, seed: int = 0, unix_timestamp: int = DEFAULT_CHAIN_TIME, market_admin: Pubkey | None = None
) -> World:
    """Every case, labelled with the keeper's expected outcome (about 60 accounts).

    ``market_admin``: another MARKET_ADMIN than the keeper (to rehearse a non-admin keeper).
    """
    b = WorldBuilder(
        name="demo", seed=seed, unix_timestamp=unix_timestamp, market_admin=market_admin
    )
    markets = _demo_markets(b)
    _demo_runs(b, markets)
    _demo_stopped_jobs(b, markets)
    _demo_done_jobs(b, markets)
    _demo_queued_and_odd_jobs(b, markets)
    return b.build()


def _demo_markets(b: WorldBuilder) -> dict[str, Pubkey]:
    """Markets, plus the keeper's node identity: its stake and a collection NFT."""
    keeper = b.keypair("keeper").pubkey()
    b.stake(authority=keeper, xnos=5_000 * NOS, label="keeper_stake")
    collection = b.label("collection", b.address("collection"))
    b.nft(owner=keeper, collection=collection, label="keeper_nft")
    for name in ("alice", "bob", "carol", "node_a", "node_b"):
        b.wallet(name)
    return {
        # Open (access key = system program); one job queued; a stale key after the queue.
        "open": b.market(
            label="market_open",
            node_xnos_minimum=1_000 * NOS,
            queue=[b.address("queued_in_queue")],
            stale_tail=[b.address("orphan_in_stale_tail")],
        ),
        # Gated by a collection NFT; empty queue (queue_type 255).
        "gated": b.market(label="market_gated", job_expiration=7 * DAY, node_access_key=collection),
        "legacy": b.market(label="market_legacy_size", job_expiration=HOUR, legacy_size=True),
        "high": b.market(label="market_high_stake", node_xnos_minimum=1_000_000 * NOS),
        "unqueued": b.market(label="market_job_type_255", job_type=255),
        # A closed market: its address, no account.
        "gone": b.label("market_gone", b.address("market_gone")),
    }


def _demo_runs(b: WorldBuilder, m: dict[str, Pubkey]) -> None:
    now, node_a, node_b = b.now, b.labels["node_a"], b.labels["node_b"]

    def running(
        label: str,
        started: int,
        run_outcome: str,
        *,
        timeout: int = HOUR,
        job_outcome: str = "leave:job_running",
    ) -> None:
        """A Queued job with a run: the job is left alone, the run as ``run_outcome``."""
        job = b.job(
            market=m["open"], state=QUEUED, timeout=timeout, label=label, expect=job_outcome
        )
        b.run(job=job, time=started, node=node_a, label=f"run_of_{label}", expect=run_outcome)

    # Once its run is quit (expired_runs runs first), the job waits in no queue with no run:
    # the census reports it as an orphan, and nothing can safely close it.
    running(
        "job_timed_out", now - HOUR - DAY, "quitAdmin:run_timed_out", job_outcome="leave:orphan"
    )
    running("job_running", now - 10 * MINUTE, "leave:run_not_timed_out")
    running("job_running_in_grace", now - HOUR - GRACE_SECONDS // 3, "leave:run_not_timed_out")
    # `extend` raised the timeout to 2 h: timed out under the old 1 h, not under the new.
    running("job_running_extended", now - 90 * MINUTE, "leave:run_not_timed_out", timeout=2 * HOUR)

    missing = b.label("job_missing", b.address("job_missing"))  # closed long ago
    b.run(
        job=missing,
        time=now - 2 * HOUR,
        node=node_b,
        label="run_job_missing",
        expect="quitAdmin:run_job_missing",
    )
    done = b.job(
        market=m["open"],
        state=DONE,
        time_end=now - 10 * MINUTE,
        payer=b.labels["alice"],
        label="job_done_with_run",
        expect="leave:not_expired",
    )
    b.run(
        job=done,
        time=now - 30 * MINUTE,
        node=node_b,
        label="run_job_done",
        expect="quitAdmin:run_job_done",
    )


def _demo_stopped_jobs(b: WorldBuilder, m: dict[str, Pubkey]) -> None:
    claim, carol = "claim:job_stopped", b.labels["carol"]
    b.job(market=m["open"], state=STOPPED, payer=carol, label="stopped_open", expect=claim)
    b.job(market=m["gated"], state=STOPPED, payer=carol, label="stopped_gated", expect=claim)
    taken = b.job(
        market=m["open"],
        state=STOPPED,
        payer=carol,
        label="stopped_with_run",
        expect="leave:job_running",
    )
    b.run(
        job=taken,
        time=b.now - 5 * MINUTE,
        node=b.labels["node_b"],
        label="run_of_stopped_job",
        expect="leave:run_not_timed_out",
    )
    b.job(
        market=m["high"],
        state=STOPPED,
        payer=carol,
        label="stopped_stake_too_low",
        expect="leave:stake_too_low",
    )
    b.job(
        market=m["gone"],
        state=STOPPED,
        payer=carol,
        label="stopped_market_gone",
        expect="leave:market_missing",
    )


def _demo_done_jobs(b: WorldBuilder, m: dict[str, Pubkey]) -> None:
    now, alice, bob, carol = b.now, b.labels["alice"], b.labels["bob"], b.labels["carol"]
    never_funded = b.label("payer_never_funded", b.address("payer_never_funded"))
    cases = [
        # label, market, payer, seconds since time_end, outcome
        ("done_expired_alice_1", "open", alice, 2 * DAY, "clean:job_expired"),
        ("done_expired_alice_2", "open", alice, 3 * DAY, "clean:job_expired"),
        ("done_expired_by_one_second", "open", bob, DAY + 1, "clean:job_expired"),
        ("done_expired_gated", "gated", carol, 8 * DAY, "clean:job_expired"),
        ("done_expired_legacy_market", "legacy", bob, 2 * HOUR, "clean:job_expired"),
        ("done_expired_unqueued_market", "unqueued", carol, 2 * DAY, "clean:job_expired"),
        ("done_expired_payer_never_funded", "open", never_funded, 5 * DAY, "clean:job_expired"),
        ("done_not_expired", "open", alice, HOUR, "leave:not_expired"),
        # job_expiration == now - time_end: the program's comparison is strict.
        ("done_expiry_boundary", "open", bob, DAY, "leave:not_expired"),
        ("done_not_expired_gated", "gated", carol, 6 * DAY, "leave:not_expired"),
        ("done_market_gone", "gone", alice, 2 * DAY, "cleanAdmin:market_gone"),
        ("done_market_gone_recently", "gone", bob, MINUTE, "cleanAdmin:market_gone"),
    ]
    for label, market, payer, age, outcome in cases:
        end = now - age
        b.job(
            market=m[market],
            state=DONE,
            payer=payer,
            time_start=end - HOUR,
            time_end=end,
            label=label,
            expect=outcome,
        )


def _demo_queued_and_odd_jobs(b: WorldBuilder, m: dict[str, Pubkey]) -> None:
    alice = b.labels["alice"]
    queued = [
        ("queued_in_queue", "open", "leave:queued"),
        ("queued_market_gone", "gone", "leave:orphan"),
        ("orphan_no_queue", "open", "leave:orphan"),
        ("orphan_in_stale_tail", "open", "leave:orphan"),  # its key is only in the tail bytes
        ("orphan_unqueued_market", "unqueued", "leave:orphan"),
    ]
    for label, market, outcome in queued:
        b.job(market=m[market], state=QUEUED, payer=alice, label=label, expect=outcome)
    long_ago = b.now - 30 * DAY
    b.job(
        market=m["open"],
        state=DONE,
        legacy=True,
        time_end=long_ago,
        payer=alice,
        label="legacy_done_expired",
        expect="leave:legacy_layout",
    )
    for state in (1, 7):
        b.job(
            market=m["open"],
            state=state,
            time_end=long_ago,
            payer=alice,
            label=f"state_byte_{state}",
            expect="leave:unknown_state",
        )
    garbage_data = JOB_DISCRIMINATOR + bytes(92)  # 100 bytes: a job by its first 8 only
    garbage = Account(minimum_balance(len(garbage_data)), garbage_data, b.program_id)
    b.raw(b.address("garbage_job"), garbage, label="garbage_job", expect="leave:undecodable")


def build_scale(
    *,
    jobs: int = 1_000_000,
    due_fraction: float = 0.1,
    markets: int = 4,
    payers: int = 50,
    seed: int = 0,
    unix_timestamp: int = DEFAULT_CHAIN_TIME,
    chunk: int = 100_000,
    steady_expiration: int | None = None,
) -> World:
    """``jobs`` Done jobs; exactly ``round(jobs * due_fraction)`` are past expiration.

    Market ``i`` keeps jobs ``i + 1`` days. Due jobs ended 1 s to 30 days past expiration;
    the others ended at most ``job_expiration`` seconds ago (not expired, boundary included).
    With ``steady_expiration``, one more market, ``market_steady``, keeps jobs that many
    seconds and holds none of the world's: benchmarks finish jobs there at a steady rate
    and see them fall due within minutes, not after a day's jump.
    """
    if not 0 <= due_fraction <= 1 or jobs < 0 or markets < 1 or payers < 1:
        raise ConfigError(
            "scale world: need jobs >= 0, 0 <= due_fraction <= 1, markets and payers >= 1"
        )
    b = WorldBuilder(name="scale", seed=seed, unix_timestamp=unix_timestamp)
    rng = np.random.default_rng(seed)
    market_keys = [
        b.market(label=f"market_{i}", job_expiration=(i + 1) * DAY) for i in range(markets)
    ]
    expirations = np.array([(i + 1) * DAY for i in range(markets)], dtype=np.int64)
    payer_keys = key_column(b"".join(bytes(b.wallet(f"payer_{i}")) for i in range(payers)))
    nodes = key_column(b"".join(bytes(b.keypair(f"node_{i}").pubkey()) for i in range(16)))
    market_matrix = key_column(b"".join(bytes(key) for key in market_keys))

    due_total = round(jobs * due_fraction)
    due = np.zeros(jobs, dtype=bool)
    due[rng.permutation(jobs)[:due_total]] = True
    market_of = rng.integers(0, markets, jobs)
    for start in range(0, jobs, chunk):
        stop = min(start + chunk, jobs)
        count = stop - start
        expiration = expirations[market_of[start:stop]]
        late = expiration + rng.integers(1, 30 * DAY, count)
        early = rng.integers(0, expiration + 1)
        time_end = b.now - np.where(due[start:stop], late, early)
        columns = JobColumns(
            market=market_matrix[market_of[start:stop]],
            payer=payer_keys[rng.integers(0, payers, count)],
            node=nodes[rng.integers(0, len(nodes), count)],
            state=int(DONE),
            time_end=time_end,
            time_start=time_end - rng.integers(MINUTE, HOUR, count),
            price=100,
        )
        b.jobs_bulk(rng.bytes(32 * count), columns)
    b.counts.update(
        {"done_jobs": jobs, "due_jobs": due_total, "markets": markets, "payers": payers}
    )
    for index in range(markets):
        b.counts[f"due_jobs:market_{index}"] = int(np.count_nonzero(due & (market_of == index)))
    if steady_expiration is not None:
        b.market(label="market_steady", job_expiration=steady_expiration)
    return b.build()


WORLDS: Final[dict[str, Callable[..., World]]] = {
    "demo": build_demo,
    "scale": build_scale,
    "empty": build_empty,
}


def load_world(name: str, **params: Any) -> World:  # noqa: ANN401 - parameters vary per world
    """The world called ``name`` built with ``params`` (e.g. ``load_world("scale", jobs=1000)``)."""
    try:
        build = WORLDS[name]
    except KeyError:
        raise ConfigError(f"unknown world {name!r}; worlds: {', '.join(WORLDS)}") from None
    accepted = inspect.signature(build).parameters
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ConfigError(
            f"world {name!r} takes no {', '.join(unknown)}; it takes {', '.join(accepted)}"
        )
    return build(**params)
