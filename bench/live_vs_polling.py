"""Benchmark: live mode against polling, on the local chain's ``scale`` world.

    .venv/bin/python bench/live_vs_polling.py [--jobs 20000] [--steady 200]

A keeper service runs in live mode against a chain holding ``--jobs`` Done jobs (none
due). The chain's clock is driven by this script: ``--steady`` jobs are posted, started
and finished one chain second apart, then chain time jumps to a day later (market_0 keeps
jobs one day) and runs one chain second per slot, so one job falls due every chain
second. For each job it records the wall time of the slot it fell due in and of the slot
its account disappeared (the chain runs at ten chain seconds a wall second, so latency is
given in wall seconds: the keeper's own work, slot to confirmation). Bytes are the
keeper's own count (``nosana_keeper_rpc_response_bytes_total``, HTTP and websocket);
getProgramAccounts calls are the chain's. Polling is not simulated in compressed time
(its scheduler runs on wall seconds): its day is one measured full read (``run --once
--dry-run``) times the passes a day at the default intervals, and its due-to-confirmed is
the interval's wait (uniform over ``clean.interval_seconds``) — stated, not measured.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from solders.pubkey import Pubkey  # noqa: E402

from keeper.localnet.chain import LocalChain, load_world  # noqa: E402
from keeper.localnet.standalone import write_keypairs  # noqa: E402

DAY = 86_400
SLOT_PAUSE_S = 0.1  # one chain second per slot, ten a wall second
BYTES_METRIC = "nosana_keeper_rpc_response_bytes_total"


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def metric_sum(text: str, name: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and not line.startswith("#")
    )


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
    moved = sum(after["responseBytes"].values()) - sum(before["responseBytes"].values())
    calls = after["calls"].get("getProgramAccounts", 0) - before["calls"].get(
        "getProgramAccounts", 0
    )
    return int(moved), int(calls)


def control(chain: LocalChain, method: str, *params: object) -> dict[str, object]:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    request = urllib.request.Request(
        chain.url, data=body.encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        answer: dict[str, object] = json.loads(response.read())["result"]
    return answer


def wait_live(base: str) -> None:
    for _ in range(600):
        time.sleep(0.1)
        try:
            if 'nosana_keeper_resyncs_total{cause="start"} 1.0' in get(base + "/metrics"):
                break
        except OSError:
            continue
    time.sleep(3)  # the start resync's read and sends


def finish_jobs(chain: LocalChain, count: int, t0: int) -> list[tuple[str, int]]:
    """``count`` jobs finished one chain second apart from ``t0``: (job, clean due)."""
    market = str(chain.world.labels["market_0"])
    jobs = []
    for k in range(count):
        chain.set_clock(t0 + k)
        job = str(control(chain, "localnet_postJob", market)["job"])
        control(chain, "localnet_startJob", job)
        control(chain, "localnet_finishJob", job)
        chain.advance_slots(1)
        time.sleep(0.02)
        jobs.append((job, t0 + k + DAY + 1))
    return jobs


def run_window(chain: LocalChain, jobs: list[tuple[str, int]], t0: int) -> list[float]:
    """Chain time from ``t0 + DAY``, one chain second per slot: wall seconds from each job's
    due slot to the slot it was gone in."""
    due_wall: dict[str, float] = {}
    closed_wall: dict[str, float] = {}
    for second in range(len(jobs) + 30):
        now = t0 + DAY + second
        chain.set_clock(now)
        chain.advance_slots(1)
        stamp = time.monotonic()
        for job, due in jobs:
            if due <= now and job not in due_wall:
                due_wall[job] = stamp
            if job not in closed_wall and chain.get_account(Pubkey.from_string(job)) is None:
                closed_wall[job] = stamp
        time.sleep(SLOT_PAUSE_S)
    return sorted(closed_wall[j] - due_wall[j] for j in closed_wall if j in due_wall)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--steady", type=int, default=200)
    args = parser.parse_args()
    world = load_world("scale", jobs=args.jobs, markets=4, due_fraction=0.0)
    with LocalChain.run_in_thread(world, port=0, auto_advance=False) as chain:
        keys = write_keypairs(chain.world, Path(tempfile.mkdtemp()))
        port = 19_000 + os.getpid() % 1000
        env = env_for(chain, port, keys)
        polling_pass, polling_calls = full_read_bytes(chain, env)
        process = subprocess.Popen(
            [sys.executable, "-m", "keeper", "run"], env=env, stderr=subprocess.DEVNULL
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_live(base)
            # The window's bytes only: the start resync (one full read) is counted in the
            # day's 24 resyncs, not extrapolated with the window.
            start_bytes = metric_sum(get(base + "/metrics"), BYTES_METRIC)
            t0 = chain.unix_timestamp
            calls_before = chain.node.stats.calls.get("getProgramAccounts", 0)
            jobs = finish_jobs(chain, args.steady, t0)
            latencies = run_window(chain, jobs, t0)
            text = get(base + "/metrics")
        finally:
            process.terminate()
            process.wait(timeout=60)
        calls = chain.node.stats.calls.get("getProgramAccounts", 0) - calls_before
    report(args, text, latencies, calls, (polling_pass, polling_calls), start_bytes=start_bytes)


def report(
    args: argparse.Namespace,
    text: str,
    latencies: list[float],
    calls: int,
    polling: tuple[int, int],
    *,
    start_bytes: float,
) -> None:
    polling_pass, polling_calls = polling
    live_bytes = metric_sum(text, BYTES_METRIC) - start_bytes
    simulated = 2 * args.steady  # chain seconds the live keeper followed
    live_day = live_bytes * DAY / simulated + 24 * polling_pass  # plus the hourly resyncs
    # Polling at the default intervals: clean every 600 s reads every account kind (the
    # measured full pass); quitAdmin every 60 s reads only the RunAccounts in between (none
    # in this world: their bytes are left out). With claims on (a node keeper, 60 s) the
    # jobs are read every minute: the full pass 1,440 times a day.
    polling_day = polling_pass * DAY / 600
    polling_day_claims_on = polling_pass * DAY / 60
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    result = {
        "background_done_jobs": args.jobs,
        "steady_jobs": args.steady,
        "cleaned": len(latencies),
        "live_bytes_start_resync": start_bytes,
        "live_bytes_window": live_bytes,
        "live_getProgramAccounts_window": calls,
        "polling_pass_bytes": polling_pass,
        "polling_pass_getProgramAccounts": polling_calls,
        "live_bytes_per_day": live_day,
        "polling_bytes_per_day": polling_day,
        "live_share_of_polling": live_day / polling_day,
        "polling_bytes_per_day_claims_on": polling_day_claims_on,
        "live_share_of_polling_claims_on": live_day / polling_day_claims_on,
        "live_getProgramAccounts_per_day": 24 * polling_calls,
        # 144 full passes, and a RunAccount read on each of the other 1,296 minutes.
        "polling_getProgramAccounts_per_day": polling_calls * DAY / 600 + (DAY / 60 - DAY / 600),
        "polling_getProgramAccounts_per_day_claims_on": polling_calls * DAY / 60,
        "due_to_closed_p50_s": q[49],
        "due_to_closed_p99_s": q[98],
        "load": Path("/proc/loadavg").read_text().split()[:3],
    }
    print(json.dumps(result, indent=2))
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "live_vs_polling.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
