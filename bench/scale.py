"""Benchmark: a keeper pass over the local chain's `scale` world, beside the floor scan
and anchorpy, in the same run. Prints a table and writes bench/results/scale.json.

    .venv/bin/python bench/scale.py [--jobs 1000000] [--skip-anchorpy]

The local chain runs in its own process; each measured client runs under bench/measure.py
so its wall time and peak RSS are its own.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RESULTS = ROOT / "bench" / "results"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rpc(url: str, method: str, params: list | None = None) -> dict:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []})
    request = urllib.request.Request(
        url, data=body.encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def wait_ready(url: str, chain: subprocess.Popen, limit: float = 900) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if chain.poll() is not None:
            raise SystemExit(f"local chain exited with {chain.returncode}")
        try:
            if rpc(url, "getHealth").get("result") == "ok":
                return
        except OSError:
            pass
        time.sleep(1)
    raise SystemExit("local chain did not become ready")


def measure(name: str, command: list[str], env: dict[str, str]) -> dict:
    print(f"… {name}", flush=True)
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "measure.py"), *command],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    result = json.loads(out.stdout)
    result["name"] = name
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--skip-anchorpy", action="store_true")
    args = parser.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    keys = ROOT / ".keeper-local" / "bench"
    chain = subprocess.Popen(
        [
            str(BIN / "nosana-keeper"),
            "localnet",
            "--world",
            "scale",
            "--jobs",
            str(args.jobs),
            "--port",
            str(port),
            "--keypair-dir",
            str(keys),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_ready(url, chain)
        program_id = "nosJTmGQxvwXy23vng5UjkTbfv91Bzf9jEuro78dAGR"
        env = {
            **os.environ,
            "KEEPER_RPC_URL": url,
            "KEEPER_KEYPAIR": str(keys / "keeper.json"),
            "KEEPER_CONFIG": str(ROOT / "config" / "profiles" / "localnet.yaml"),
        }
        keeper = [str(BIN / "nosana-keeper"), "run", "--once"]
        runs = [
            measure(
                "floor: one getProgramAccounts, stdlib json",
                [sys.executable, str(ROOT / "bench" / "floor_scan.py"), url, program_id],
                env,
            ),
            measure("keeper run --once --dry-run", [*keeper, "--dry-run"], env),
        ]
        if not args.skip_anchorpy:
            runs.append(
                measure(
                    'anchorpy account["JobAccount"].all()',
                    [sys.executable, str(ROOT / "bench" / "anchorpy_scan.py"), url, program_id],
                    env,
                )
            )
        runs.append(measure("keeper run --once (sends)", keeper, env))
    finally:
        chain.terminate()
        chain.wait(timeout=60)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "scale.json").write_text(json.dumps({"jobs": args.jobs, "runs": runs}, indent=2))
    print(f"\n{args.jobs:,} Done jobs, 10% due")
    print(f"{'command':48} {'exit':>4} {'wall s':>8} {'peak RSS MB':>12}")
    for run in runs:
        print(
            f"{run['name']:48} {run['exit']:>4} {run['wall_seconds']:>8} {run['peak_rss_mb']:>12}"
        )
    summary = runs[-1]["stdout_tail"].strip().splitlines()
    if summary:
        print("keeper summary:", summary[-1])


if __name__ == "__main__":
    main()
