"""Benchmark: live mode against polling, on the local chain's ``scale`` world.

    .venv/bin/python bench/live_vs_polling.py [--jobs 20000] [--markets 4] [--steady 200]
        [--scan-method standard|paginated] [--hour-jobs 0] [--resync-interval S]

The world holds ``--jobs`` Done jobs over ``--markets`` markets, none due yet (a steady
state: the backlog a new keeper drains is measured by ``bench/full_pass.py``), and one more
market, ``market_steady``, that keeps jobs ``--expiration`` seconds (60). The chain's clock
is driven by this script, one chain second per slot, ten slots a wall second.

**The window.** With a live-mode keeper following the chain, ``--steady`` jobs are posted,
started and finished in ``market_steady``, one a chain second; each falls due
``--expiration`` seconds later, so once the first is due one job finishes and one falls
due every second, and the world's own jobs fall due as their markets' expirations pass
(about ``jobs / markets / DAY * H(markets)`` a second). For each steady job the script
records the wall time of the slot it fell due in and of the slot its account was gone in
(latency in wall seconds: the keeper's own work, slot to confirmation). The window's bytes
are the keeper's own count (``nosana_keeper_rpc_response_bytes_total``, HTTP and
websocket) without getProgramAccounts(V2): the feed, the re-checks and the sends.

**The hour** (``--hour-jobs N``, with paginated scans). After the window, N jobs are
finished in ``market_0`` (kept a day: all of them are still there at the next read), one a
chain second: an hour of writes at one a second. The keeper's getProgramAccountsV2 bytes
from the first of them until two more changed reads have finished after the last are an
upper bound of one hourly changed read (every account written in the hour, read once,
plus what the reads in between re-read of their neighbours' pages). ``--resync-interval``
(default 30 s with ``--hour-jobs``) makes those reads come within the benchmark.

**A day**: live mode = the window's bytes scaled to a day + 24 resyncs (each a measured
full read with standard scans, each a measured hourly changed read with paginated ones).
The start read (one full read, and one after every reconnect) is given apart. Polling is
not simulated in compressed time (its scheduler runs on wall seconds): its day is one
measured full read (``run --once --dry-run``, standard scans) times the passes a day at the
default intervals, and its due-to-confirmed is the interval's wait — stated, not measured.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from solders.pubkey import Pubkey  # noqa: E402

from keeper.localnet.chain import LocalChain, load_world  # noqa: E402
from keeper.localnet.standalone import write_keypairs  # noqa: E402

DAY = 86_400
SLOT_PAUSE_S = 0.1  # one chain second per slot, ten a wall second
BYTES_METRIC = "nosana_keeper_rpc_response_bytes_total"
SCANS = ("getProgramAccounts", "getProgramAccountsV2")
STARTUP_SCANS = 1  # check_program's key-only MarketAccount count, once a process


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def metric_values(text: str, name: str) -> dict[str, float]:
    """A metric's samples, by their label text (``method="getBalance"``)."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            labels = series[len(name) :].strip("{}")
            values[labels] = values.get(labels, 0.0) + float(value)
    return values


def bytes_by_method(base: str) -> dict[str, float]:
    raw = metric_values(get(base + "/metrics"), BYTES_METRIC)
    return {labels.split('"')[1]: value for labels, value in raw.items() if '"' in labels}


def resync_reads(base: str, kind: str) -> float:
    values = metric_values(get(base + "/metrics"), "nosana_keeper_resync_reads_total")
    return values.get(f'kind="{kind}"', 0.0)


def minus(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v - before.get(k, 0.0)}


def env_for(chain: LocalChain, port: int, keys: dict[str, Path]) -> dict[str, str]:
    world = chain.world
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("KEEPER_")},
        "KEEPER_MARKET_ADMIN": str(world.market_admin),
        "KEEPER_PROGRAM_ID": str(world.program_id),
        "KEEPER_NOS_MINT": str(world.nos_mint),
        "KEEPER_LOG_FORMAT": "json",
        "KEEPER_LOG_LEVEL": "WARNING",
        "KEEPER_SEND_RESEND_INTERVAL_SECONDS": "0.2",
        "KEEPER_METRICS_PORT": str(port),
        "KEEPER_METRICS_HOST": "127.0.0.1",
        "KEEPER_RPC_URL": chain.url,
        "KEEPER_KEYPAIR": str(keys["keeper"]),
        "KEEPER_DISCOVERY_SILENCE_TIMEOUT_SECONDS": "120",
    }


def full_read_bytes(chain: LocalChain, env: dict[str, str]) -> tuple[int, int]:
    """One polling pass's response bytes (the chain's count) and its getProgramAccounts."""
    before = chain.node.stats.snapshot()
    subprocess.run(
        [sys.executable, "-m", "keeper", "run", "--once", "--dry-run"],
        env=env,
        check=False,
        capture_output=True,
    )
    after = chain.node.stats.snapshot()
    moved = sum(after["responseBytes"].values()) - sum(before["responseBytes"].values())  # type: ignore[attr-defined]
    calls = after["calls"].get("getProgramAccounts", 0) - before["calls"].get(  # type: ignore[attr-defined]
        "getProgramAccounts", 0
    )
    return int(moved), int(calls)


def control(chain: LocalChain, method: str, *params: object) -> dict[str, object]:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    request = urllib.request.Request(
        chain.url, data=body.encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer: dict[str, object] = json.loads(response.read())["result"]
    return answer


def finish_job(chain: LocalChain, market: str) -> tuple[str, int]:
    """A job posted, started and finished in ``market`` at the chain's time: (job, time_end)."""
    job = str(control(chain, "localnet_postJob", market)["job"])
    control(chain, "localnet_startJob", job)
    ended = control(chain, "localnet_finishJob", job)
    return job, int(str(ended["timeEnd"]))


def wait_live(base: str) -> None:
    """Until the keeper follows the feed and its start read (a full read) has finished:
    ``/readyz`` carries no ``live_feed`` detail then."""
    for _ in range(30_000):
        time.sleep(0.1)
        try:
            ready = json.loads(get(base + "/readyz"))
            followed = "live_feed" not in ready.get("details", {})
            if followed and resync_reads(base, "full") >= 1:
                break
        except (OSError, ValueError):
            continue
    time.sleep(2)  # the start read's sends


@dataclass
class Clock:
    """The chain's clock, one chain second per slot."""

    chain: LocalChain
    now: int

    def tick(self) -> None:
        self.now += 1
        self.chain.set_clock(self.now)
        self.chain.advance_slots(1)


@dataclass
class Window:
    latencies: list[float] = field(default_factory=list)
    chain_seconds: int = 0
    posted: int = 0


def steady_window(clock: Clock, steady: int, expiration: int) -> Window:
    """``steady`` jobs finished in ``market_steady`` one a chain second, and chain time
    run until the last has been due 30 s: wall seconds from each one's due slot to the
    slot it was gone in."""
    market = str(clock.chain.world.labels["market_steady"])
    due_at: dict[str, int] = {}
    due_wall: dict[str, float] = {}
    closed_wall: dict[str, float] = {}
    start = clock.now
    for second in range(steady + expiration + 30):
        if second < steady:
            job, time_end = finish_job(clock.chain, market)
            due_at[job] = time_end + expiration + 1  # the rule is strict
        clock.tick()
        stamp = time.monotonic()
        for job, due in due_at.items():
            if job in closed_wall or due > clock.now:
                continue
            due_wall.setdefault(job, stamp)
            if clock.chain.get_account(Pubkey.from_string(job)) is None:
                closed_wall[job] = stamp
        time.sleep(SLOT_PAUSE_S)
    latencies = sorted(closed_wall[j] - due_wall[j] for j in closed_wall)
    return Window(latencies, clock.now - start, len(due_at))


@dataclass
class Hour:
    jobs: int
    v2_bytes: float
    changed_reads: float
    full_reads: float
    v2_pages: int
    v2_accounts_visited: int
    v2_accounts_returned: int


def an_hour_of_writes(clock: Clock, base: str, count: int) -> Hour:
    """``count`` jobs finished in ``market_0`` (kept a day), one a chain second, then chain
    time run on until two more changed reads have finished: the V2 bytes in between."""
    chain = clock.chain
    market = str(chain.world.labels["market_0"])
    v2_before = bytes_by_method(base).get("getProgramAccountsV2", 0.0)
    changed_before = resync_reads(base, "changed")
    full_before = resync_reads(base, "full")
    stats_before = chain.node.stats.snapshot()
    for _ in range(count):
        finish_job(chain, market)
        clock.tick()
    target = resync_reads(base, "changed") + 2
    while resync_reads(base, "changed") < target:
        clock.tick()
        time.sleep(SLOT_PAUSE_S)
    time.sleep(1)  # the last read's pages are counted once it has finished
    stats_after = chain.node.stats.snapshot()

    def v2(key: str) -> int:
        return int(
            stats_after[key].get("getProgramAccountsV2", 0)  # type: ignore[attr-defined]
            - stats_before[key].get("getProgramAccountsV2", 0)  # type: ignore[attr-defined]
        )

    return Hour(
        jobs=count,
        v2_bytes=bytes_by_method(base).get("getProgramAccountsV2", 0.0) - v2_before,
        changed_reads=resync_reads(base, "changed") - changed_before,
        full_reads=resync_reads(base, "full") - full_before,
        v2_pages=v2("calls"),
        v2_accounts_visited=v2("accountsVisited"),
        v2_accounts_returned=v2("accountsReturned"),
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--markets", type=int, default=4)
    parser.add_argument("--steady", type=int, default=200)
    parser.add_argument("--expiration", type=int, default=60)
    parser.add_argument("--scan-method", choices=("standard", "paginated"), default="standard")
    parser.add_argument("--hour-jobs", type=int, default=0)
    parser.add_argument("--resync-interval", type=float, default=None)
    args = parser.parse_args()
    if args.hour_jobs and args.scan_method != "paginated":
        parser.error("--hour-jobs measures changed reads: it needs --scan-method paginated")
    interval = args.resync_interval or (30.0 if args.hour_jobs else None)
    world = load_world(
        "scale",
        jobs=args.jobs,
        markets=args.markets,
        due_fraction=0.0,
        steady_expiration=args.expiration,
    )
    with LocalChain.run_in_thread(world, port=0, auto_advance=False) as chain:
        # Past genesis (a real node's slot is never 0): a changedSinceSlot of the start
        # read's slot must not include every account the world was built with.
        chain.advance_slots(2)
        keys = write_keypairs(chain.world, Path(tempfile.mkdtemp()))
        port = 19_000 + os.getpid() % 1000
        env = env_for(chain, port, keys)
        polling_pass, polling_calls = full_read_bytes(chain, env)  # standard scans
        live_env = {**env, "KEEPER_RPC_SCAN_METHOD": args.scan_method}
        if interval is not None:
            live_env["KEEPER_DISCOVERY_RESYNC_INTERVAL_SECONDS"] = str(interval)
        process = subprocess.Popen(
            [sys.executable, "-m", "keeper", "run"], env=live_env, stderr=subprocess.DEVNULL
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_live(base)
            start_read = bytes_by_method(base)
            calls_before = chain.node.stats.calls.copy()
            clock = Clock(chain, chain.unix_timestamp)
            window = steady_window(clock, args.steady, args.expiration)
            window_bytes = minus(bytes_by_method(base), start_read)
            calls = {m: chain.node.stats.calls.get(m, 0) - calls_before.get(m, 0) for m in SCANS}
            hour = an_hour_of_writes(clock, base, args.hour_jobs) if args.hour_jobs else None
        finally:
            process.terminate()
            process.wait(timeout=60)
    report(
        args,
        window,
        start_read=start_read,
        window_bytes=window_bytes,
        window_scans=calls,
        polling=(polling_pass, polling_calls),
        hour=hour,
    )


def report(
    args: argparse.Namespace,
    window: Window,
    *,
    start_read: dict[str, float],
    window_bytes: dict[str, float],
    window_scans: dict[str, int],
    polling: tuple[int, int],
    hour: Hour | None,
) -> None:
    polling_pass, polling_calls = polling
    feed = sum(v for k, v in window_bytes.items() if k not in SCANS)
    feed_day = feed * DAY / window.chain_seconds
    # 24 hourly resyncs: with paginated scans each is a changed read (measured), with
    # standard scans a full read (the polling pass: the same three getProgramAccounts).
    if hour is not None:
        resync = hour.v2_bytes
        resync_kind = "changed read (an hour of writes, measured)"
    else:
        resync = float(polling_pass)
        resync_kind = "full read (the polling pass)"
    live_day = feed_day + 24 * resync
    # Polling at the default intervals: clean every 600 s reads every account kind (the
    # measured full pass); quitAdmin every 60 s reads only the RunAccounts in between.
    polling_day = polling_pass * DAY / 600
    polling_day_claims_on = polling_pass * DAY / 60
    q = statistics.quantiles(window.latencies, n=100) if len(window.latencies) > 1 else [0.0] * 99
    result: dict[str, object] = {
        "background_done_jobs": args.jobs,
        "markets": args.markets,
        "scan_method": args.scan_method,
        "steady_jobs": window.posted,
        "steady_market_expiration_s": args.expiration,
        "window_chain_seconds": window.chain_seconds,
        "cleaned": len(window.latencies),
        "start_read_bytes": sum(start_read.values()),
        "window_bytes_by_method": window_bytes,
        "window_feed_bytes": feed,
        "window_scans": window_scans,
        "polling_pass_bytes": polling_pass,
        "polling_pass_getProgramAccounts": polling_calls,
        "hour": None if hour is None else hour.__dict__,
        "live_resync_kind": resync_kind,
        # A day's scans: 24 resyncs (three getProgramAccounts each, or an hour's V2 pages).
        "live_scans_per_day": 24
        * (polling_calls - STARTUP_SCANS if hour is None else hour.v2_pages),
        "live_resync_bytes": resync,
        "live_feed_bytes_per_day": feed_day,
        "live_bytes_per_day": live_day,
        "polling_bytes_per_day": polling_day,
        "live_share_of_polling": live_day / polling_day,
        "polling_bytes_per_day_claims_on": polling_day_claims_on,
        "live_share_of_polling_claims_on": live_day / polling_day_claims_on,
        # 144 full passes, and a RunAccount read on each of the other 1,296 minutes. The
        # measured ``run --once`` includes its start-up check (a key-only MarketAccount read,
        # once a process): one call fewer a pass.
        "polling_getProgramAccounts_per_day": (polling_calls - STARTUP_SCANS) * DAY / 600
        + (DAY / 60 - DAY / 600),
        "due_to_closed_p50_s": q[49],
        "due_to_closed_p99_s": q[98],
        "due_to_closed_max_s": max(window.latencies, default=0.0),
        "load": Path("/proc/loadavg").read_text().split()[:3],
    }
    print(json.dumps(result, indent=2))
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    name = f"live_vs_polling-{args.jobs}-{args.scan_method}.json"
    (out / name).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
