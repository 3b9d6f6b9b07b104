"""Benchmark: a full dry-run pass against the floor, side by side in one run, on the local
chain's ``scale`` world (issue 14's figures). Prints a table; writes
bench/results/full_pass.json.

    .venv/bin/python bench/full_pass.py [--jobs 1000000] [--markets 50] [--due 0.85]

Each client runs under bench/measure.py (its own wall time and peak RSS) and talks to the
chain through its own bench/relay.py, which counts the bytes it received and the
getProgramAccounts it made. The machine's load average is printed beside the figures.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scale import BIN, RESULTS, ROOT, free_port, measure, rpc, wait_ready

PROGRAM_ID = "nosJTmGQxvwXy23vng5UjkTbfv91Bzf9jEuro78dAGR"


def load() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__()


def through_relay(name: str, command: list[str], chain_port: int, env: dict[str, str]) -> dict:
    port = free_port()
    with tempfile.TemporaryDirectory() as scratch:
        stats = Path(scratch) / "relay.json"
        relay = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "relay.py"), str(port), str(chain_port), stats]
        )
        try:
            while not stats.exists():
                time.sleep(0.1)
            url = f"http://127.0.0.1:{port}"
            chain_url = f"http://127.0.0.1:{chain_port}"
            rpc(chain_url, "localnet_resetStats")
            result = measure(
                name,
                [part.replace("{url}", url) for part in command],
                {**env, "KEEPER_RPC_URL": url},
            )
            time.sleep(0.5)  # the last connection's close reaches the relay
        finally:
            relay.terminate()
            relay.wait(timeout=30)
        result.update(json.loads(stats.read_text()))
    node = rpc(chain_url, "localnet_getStats")["result"]
    result["accounts_visited"] = node["accountsVisited"].get("getProgramAccounts", 0)
    result["load_after"] = load()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--markets", type=int, default=50)
    parser.add_argument("--due", type=float, default=0.85)
    args = parser.parse_args()
    port = free_port()
    keys = ROOT / ".keeper-local" / "bench"
    chain = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "bench" / "chain.py"),
            str(port),
            str(keys),
            str(args.jobs),
            str(args.markets),
            str(args.due),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}", chain)
        env = {
            **os.environ,
            "KEEPER_KEYPAIR": str(keys / "keeper.json"),
            "KEEPER_CONFIG": str(ROOT / "config" / "profiles" / "localnet.yaml"),
            "KEEPER_LOG_LEVEL": "WARNING",
        }
        load_before = load()
        floor = [sys.executable, str(ROOT / "bench" / "floor_scan.py"), "{url}", PROGRAM_ID]
        keeper = [str(BIN / "nosana-keeper"), "run", "--once", "--dry-run"]
        runs = [
            through_relay("floor: one getProgramAccounts, stdlib json", floor, port, env),
            through_relay("keeper run --once --dry-run", keeper, port, env),
        ]
    finally:
        chain.terminate()
        chain.wait(timeout=60)
    RESULTS.mkdir(parents=True, exist_ok=True)
    report = {**vars(args), "load_before": load_before, "runs": runs}
    (RESULTS / "full_pass.json").write_text(json.dumps(report, indent=2))
    print(f"\n{args.jobs:,} Done jobs, {args.markets} markets, {args.due:.0%} due")
    print(f"load average (1, 5, 15 min) before: {load_before}")
    print(
        f"{'command':44} {'exit':>4} {'wall s':>7} {'RSS MB':>7} {'gPA':>4} "
        f"{'MB received':>12} {'visited':>10}"
    )
    for run in runs:
        print(
            f"{run['name']:44} {run['exit']:>4} {run['wall_seconds']:>7} "
            f"{run['peak_rss_mb']:>7} {run['get_program_accounts']:>4} "
            f"{run['bytes_received'] / 1e6:>12.1f} {run['accounts_visited']:>10,}   "
            f"load after {run['load_after']}"
        )
    base, pass_ = runs
    print(f"wall time: {pass_['wall_seconds'] / base['wall_seconds']:.2f}x the floor")
    print(f"bytes: {pass_['bytes_received'] / base['bytes_received']:.2f}x the floor")
    tail = pass_["stdout_tail"].strip().splitlines()
    if tail:
        print("keeper summary:", tail[-1][:600])
    if pass_["exit"]:
        print("keeper stderr:", pass_["stderr_tail"])


if __name__ == "__main__":
    main()
