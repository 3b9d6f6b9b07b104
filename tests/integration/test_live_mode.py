"""Live mode end to end: the service follows the local chain's websocket between full reads.

The chain's clock runs (one slot every 100 ms, chain time with it) and its lifecycle
control methods post, start, finish and stop jobs and close markets as the program would;
``localnet_getStats`` counts the node's getProgramAccounts calls, so "no full read in
between" is the chain's word, not the keeper's.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from solders.pubkey import Pubkey

from keeper.localnet.chain import LocalChain
from keeper.localnet.standalone import write_keypairs
from tests.integration.conftest import KeeperCli, keeper_env
from tests.integration.probe import free_port as _free_port
from tests.integration.probe import get as _get
from tests.integration.test_service import _service_command, _service_env

DAY = 86_400
GRACE = 300  # quit.grace_seconds' default


@pytest.fixture
def live_chain() -> Iterator[LocalChain]:
    """The demo world with a running clock: every slot notifies the Clock sysvar."""
    with LocalChain.run_in_thread("demo", port=0, slot_ms=100) as chain:
        yield chain


@pytest.fixture
def live_cli(live_chain: LocalChain, tmp_path: Path) -> KeeperCli:
    paths = write_keypairs(live_chain.world, tmp_path / "keys")
    return KeeperCli(live_chain, paths["keeper"], keeper_env(live_chain))


def control(chain: LocalChain, method: str, *params: object) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    request = urllib.request.Request(
        chain.url, data=body.encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        answer = json.loads(response.read())
    assert "error" not in answer, answer
    return answer["result"]


def scans(chain: LocalChain) -> int:
    """getProgramAccounts calls the node has answered."""
    stats = control(chain, "localnet_getStats")
    return int(stats["calls"].get("getProgramAccounts", 0))


def wait_for(predicate: Callable[[], bool], limit: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what}: not met within {limit} s")


def metric(base: str, name: str, labels: str = "") -> float:
    text = _get(f"{base}/metrics")[1]
    pattern = "^" + re.escape(name + (f"{{{labels}}}" if labels else "")) + r" ([0-9.e+-]+)$"
    found = re.search(pattern, text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


@contextmanager
def service(cli: KeeperCli, tmp_path: Path, **settings: str) -> Iterator[str]:
    """``nosana-keeper run`` in live mode; yields its metrics base URL once it follows the
    feed (or, with ``await_live=False``, once it answers)."""
    await_live = settings.pop("await_live", "1") == "1"
    port = _free_port()
    env = _service_env(cli, port, KEEPER_SCHEDULE_JITTER_SECONDS="0", **settings)
    log_path = tmp_path / "keeper.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            _service_command(cli), env=env, stdout=subprocess.DEVNULL, stderr=log_file
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_for(lambda: _get(f"{base}/healthz")[0] == 200, what="service up")
            if await_live:
                wait_for(lambda: following(base), what="live feed followed")
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def following(base: str) -> bool:
    """Subscribed, and the resync that follows has finished (readiness has no detail)."""
    if metric(base, "nosana_keeper_live_feed_connected") != 1:
        return False
    body = json.loads(_get(f"{base}/readyz")[1] or "{}")
    return "live_feed" not in body.get("details", {})


def finished_job(chain: LocalChain, market: Pubkey) -> tuple[Pubkey, int]:
    """A job posted, started and finished in ``market`` now: (job, time_end)."""
    job = control(chain, "localnet_postJob", str(market))["job"]
    control(chain, "localnet_startJob", job)
    ended = control(chain, "localnet_finishJob", job)
    return Pubkey.from_string(job), int(ended["timeEnd"])


def gone(chain: LocalChain, key: Pubkey) -> Callable[[], bool]:
    return lambda: chain.get_account(key) is None


def test_live_mode_cleans_a_job_as_it_expires_without_a_full_read(
    live_cli: KeeperCli, tmp_path: Path
) -> None:
    chain = live_cli.chain
    market = chain.world.labels["market_open"]  # job_expiration one day
    with service(live_cli, tmp_path) as base:
        job, time_end = finished_job(chain, market)
        wait_for(
            lambda: metric(base, "nosana_keeper_live_notifications_total", 'kind="job"') >= 1,
            what="the finished job notified",
        )
        before = scans(chain)
        chain.set_clock(time_end + DAY - 2)  # due (strictly after expiry) in ~3 s
        assert chain.get_account(job) is not None
        wait_for(gone(chain, job), limit=30, what="job cleaned")
        assert scans(chain) == before  # no getProgramAccounts: the feed alone did it
        assert metric(base, "nosana_keeper_resyncs_total", 'cause="interval"') == 0
        wait_for(
            lambda: (
                metric(base, "nosana_keeper_due_to_confirmed_seconds_count", 'task="finished_jobs"')
                >= 1
            ),
            what="due-to-confirmed observed",
        )


def test_live_mode_quits_a_run_that_times_out(live_cli: KeeperCli, tmp_path: Path) -> None:
    chain = live_cli.chain
    market = chain.world.labels["market_open"]
    with service(live_cli, tmp_path) as base:
        job = control(chain, "localnet_postJob", str(market), {"timeout": 60})["job"]
        run = Pubkey.from_string(control(chain, "localnet_startJob", job)["run"])
        started = chain.unix_timestamp
        wait_for(
            lambda: (
                metric(base, "nosana_keeper_live_scheduled_actions", 'task="expired_runs"') >= 1
            ),
            what="the run's quit filed",
        )
        before = scans(chain)
        chain.set_clock(started + 60 + GRACE - 1)
        assert chain.get_account(run) is not None
        wait_for(gone(chain, run), limit=30, what="run quit")
        assert scans(chain) == before
        assert (
            metric(
                base,
                "nosana_keeper_actions_confirmed_total",
                'action="quitAdmin",reason="run_timed_out"',
            )
            >= 1
        )


def test_live_mode_claims_a_job_that_stops(live_cli: KeeperCli, tmp_path: Path) -> None:
    chain = live_cli.chain
    market = chain.world.labels["market_open"]
    with service(live_cli, tmp_path) as base:
        claims = metric(
            base, "nosana_keeper_actions_confirmed_total", 'action="claim",reason="job_stopped"'
        )
        job = control(chain, "localnet_postJob", str(market))["job"]
        control(chain, "localnet_startJob", job)
        control(chain, "localnet_stopJob", job)
        wait_for(
            lambda: (
                metric(
                    base,
                    "nosana_keeper_actions_confirmed_total",
                    'action="claim",reason="job_stopped"',
                )
                > claims
            ),
            limit=30,
            what="stopped job claimed",
        )
        assert metric(base, "nosana_keeper_resyncs_total", 'cause="interval"') == 0


def test_live_mode_sees_a_market_close(live_cli: KeeperCli, tmp_path: Path) -> None:
    chain = live_cli.chain
    market = chain.world.labels["market_high_stake"]
    with service(live_cli, tmp_path) as base:
        job, _end = finished_job(chain, market)  # not expired: clean would wait a day
        wait_for(
            lambda: metric(base, "nosana_keeper_live_notifications_total", 'kind="job"') >= 1,
            what="the finished job notified",
        )
        control(chain, "localnet_closeMarket", str(market))
        wait_for(gone(chain, job), limit=30, what="job cleanAdmin'd")
        assert metric(base, "nosana_keeper_resyncs_total", 'cause="market_closed"') >= 1
        assert (
            metric(
                base,
                "nosana_keeper_actions_confirmed_total",
                'action="cleanAdmin",reason="market_gone"',
            )
            >= 1
        )


def test_dropped_notifications_are_healed_by_the_next_resync(
    live_cli: KeeperCli, tmp_path: Path
) -> None:
    chain = live_cli.chain
    market = chain.world.labels["market_open"]
    with service(live_cli, tmp_path, KEEPER_DISCOVERY_RESYNC_INTERVAL_SECONDS="8") as base:
        chain.set_faults(ws_drop_every=1)  # the job's notifications are lost
        job, time_end = finished_job(chain, market)
        time.sleep(0.6)  # the slot ends, its notifications are dropped
        chain.clear_faults()
        chain.set_clock(time_end + DAY + 1)  # expired at once
        time.sleep(2)
        assert chain.get_account(job) is not None  # the feed never told of it
        wait_for(gone(chain, job), limit=30, what="job cleaned by the resync")
        assert metric(base, "nosana_keeper_resyncs_total", 'cause="interval"') >= 1


def test_a_silent_stall_is_caught_by_the_watchdog(live_cli: KeeperCli, tmp_path: Path) -> None:
    chain = live_cli.chain
    with service(
        live_cli,
        tmp_path,
        KEEPER_DISCOVERY_SILENCE_TIMEOUT_SECONDS="2",
        KEEPER_DISCOVERY_RECONNECT_BACKOFF_SECONDS="0.2",
    ) as base:
        chain.set_faults(ws_stall_next=1)  # the socket goes silent, its TCP stays open
        wait_for(
            lambda: metric(base, "nosana_keeper_live_feed_reconnects_total") >= 1,
            limit=20,
            what="watchdog reconnect",
        )
        wait_for(lambda: following(base), what="live again")
        assert metric(base, "nosana_keeper_resyncs_total", 'cause="reconnect"') >= 1
    assert "silent for 2.0 s" in (tmp_path / "keeper.log").read_text()


def test_websocket_refused_then_back_polls_then_goes_live(
    live_cli: KeeperCli, tmp_path: Path
) -> None:
    chain = live_cli.chain
    chain.set_faults(ws_refuse_every=1)
    with service(
        live_cli,
        tmp_path,
        await_live="0",
        KEEPER_DISCOVERY_RECONNECT_BACKOFF_SECONDS="0.5",
        KEEPER_DISCOVERY_RECONNECT_BACKOFF_MAX_SECONDS="1",
    ) as base:
        wait_for(
            lambda: "live_feed" in json.loads(_get(f"{base}/readyz")[1]).get("details", {}),
            what="readiness names the fallback",
        )
        assert metric(base, "nosana_keeper_live_feed_connected") == 0
        wait_for(  # polling: the task passes run on their own
            lambda: (
                metric(base, "nosana_keeper_scans_total", 'outcome="ok",task="finished_jobs"') >= 1
            ),
            what="a polling pass",
        )
        assert metric(base, "nosana_keeper_resyncs_total", 'cause="start"') == 0
        chain.clear_faults()
        wait_for(lambda: following(base), what="live again")
        assert metric(base, "nosana_keeper_resyncs_total", 'cause="start"') == 1
    log = (tmp_path / "keeper.log").read_text()
    assert "live feed lost: polling at the task intervals" in log
