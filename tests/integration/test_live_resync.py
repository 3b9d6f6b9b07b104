"""Live mode's full reads keep what falls due later, so resyncs need not find it again.

A full read files in the live book the cleans and quits it saw that are not yet due; with
``rpc.scan_method: paginated`` an interval resync then reads only the accounts written
since the last full read (getProgramAccountsV2 with ``changedSinceSlot``, counted by the
chain) and still heals a notification the feed dropped.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from tests.integration.test_live_mode import (
    DAY,
    control,
    finished_job,
    gone,
    metric,
    scans,
    service,
    wait_for,
)

if TYPE_CHECKING:
    from pathlib import Path

    from keeper.localnet.chain import LocalChain
    from tests.integration.conftest import KeeperCli

pytest_plugins = ["tests.integration.test_live_mode"]  # its live_chain/live_cli fixtures


def test_a_job_seen_only_by_the_full_read_is_cleaned_when_it_falls_due(
    live_cli: KeeperCli, tmp_path: Path
) -> None:
    chain = live_cli.chain
    market = chain.world.labels["market_open"]  # job_expiration one day
    job, time_end = finished_job(chain, market)  # before the service: never notified
    with service(live_cli, tmp_path) as base:
        before = scans(chain)
        chain.set_clock(time_end + DAY - 2)  # due (strictly after expiry) in ~3 s
        assert chain.get_account(job) is not None
        wait_for(gone(chain, job), limit=30, what="job cleaned from the start read's book")
        assert scans(chain) == before  # no read found it: the start read's book did
        assert metric(base, "nosana_keeper_resyncs_total", 'cause="interval"') == 0


def v2_pages(chain: LocalChain) -> tuple[int, int]:
    """getProgramAccountsV2 pages answered: (all, those with changedSinceSlot)."""
    stats = control(chain, "localnet_getStats")
    return int(stats["calls"].get("getProgramAccountsV2", 0)), int(stats["changedSincePages"])


def test_a_paginated_interval_resync_reads_only_what_changed_and_heals_a_drop(
    live_cli: KeeperCli, tmp_path: Path
) -> None:
    chain = live_cli.chain
    market = chain.world.labels["market_open"]
    settings = {
        "KEEPER_RPC_SCAN_METHOD": "paginated",
        "KEEPER_DISCOVERY_RESYNC_INTERVAL_SECONDS": "8",
    }
    with service(live_cli, tmp_path, **settings) as base:
        pages, changed = v2_pages(chain)
        plain = scans(chain)
        assert pages > 0  # the start resync walked pages
        assert changed == 0  # a full read: every account
        chain.set_faults(ws_drop_every=1)  # the job's notifications are lost
        job, time_end = finished_job(chain, market)
        time.sleep(0.6)  # the slot ends, its notifications are dropped
        chain.clear_faults()
        chain.set_clock(time_end + DAY + 1)  # expired at once
        time.sleep(2)
        assert chain.get_account(job) is not None  # the feed never told of it
        wait_for(gone(chain, job), limit=30, what="job cleaned by the changed read")
        pages_after, changed_after = v2_pages(chain)
        assert changed_after > 0
        assert pages_after - pages == changed_after  # every page since: changedSinceSlot
        assert metric(base, "nosana_keeper_resync_reads_total", 'kind="changed"') >= 1
        assert metric(base, "nosana_keeper_resync_reads_total", 'kind="full"') == 1  # start
        assert scans(chain) == plain  # and no plain getProgramAccounts


def test_each_changed_read_starts_where_the_one_before_it_did(
    live_cli: KeeperCli, tmp_path: Path
) -> None:
    """A changed read after a changed read asks only for what was written since the later
    one (not since the start's full read): its bytes follow the hour, not the uptime."""
    chain = live_cli.chain
    settings = {
        "KEEPER_RPC_SCAN_METHOD": "paginated",
        "KEEPER_DISCOVERY_RESYNC_INTERVAL_SECONDS": "3",
    }
    with service(live_cli, tmp_path, **settings) as base:
        after_start = chain.slot  # the start read's pages are all at or before it
        wait_for(
            lambda: metric(base, "nosana_keeper_resync_reads_total", 'kind="changed"') >= 2,
            limit=30,
            what="two changed reads",
        )
        last = control(chain, "localnet_getStats")["lastChangedSinceSlot"]
        assert last is not None
        assert last > after_start
        assert metric(base, "nosana_keeper_resync_reads_total", 'kind="full"') == 1


def test_a_full_book_still_reads_only_what_changed_until_chain_time_reaches_its_horizon(
    live_cli: KeeperCli, tmp_path: Path
) -> None:
    """A book at max_scheduled holds the earliest due: until the first action it left out
    may fall due, a changed read misses nothing, so interval resyncs stay changed reads;
    when chain time reaches that second, a full read (cause book_horizon) finds the rest."""
    chain = live_cli.chain
    market = chain.world.labels["market_open"]
    settings = {
        "KEEPER_RPC_SCAN_METHOD": "paginated",
        "KEEPER_DISCOVERY_RESYNC_INTERVAL_SECONDS": "3",
        "KEEPER_DISCOVERY_MAX_SCHEDULED": "10",  # above the demo world's runs (carried)
    }
    with service(live_cli, tmp_path, **settings) as base:
        # With the demo world's own not-yet-due cleans, more than the book holds.
        jobs = [finished_job(chain, market) for _ in range(11)]
        wait_for(
            lambda: (
                metric(base, "nosana_keeper_live_unscheduled_total", 'task="finished_jobs"') >= 1
            ),
            what="a finished job left out of the full book",
        )
        time.sleep(2)  # a horizon the start read set (the demo world's own jobs) has passed
        full = metric(base, "nosana_keeper_resync_reads_total", 'kind="full"')
        changed = metric(base, "nosana_keeper_resync_reads_total", 'kind="changed"')
        wait_for(
            lambda: (
                metric(base, "nosana_keeper_resync_reads_total", 'kind="changed"') >= changed + 2
            ),
            limit=30,
            what="two changed reads while the book is full",
        )
        assert metric(base, "nosana_keeper_resync_reads_total", 'kind="full"') == full
        horizon_reads = metric(base, "nosana_keeper_resyncs_total", 'cause="book_horizon"')
        chain.set_clock(max(end for _, end in jobs) + DAY + 1)  # every one of them due
        for job, _ in jobs:
            wait_for(gone(chain, job), limit=30, what="each job cleaned, held or left out")
        assert metric(base, "nosana_keeper_resyncs_total", 'cause="book_horizon"') > horizon_reads
