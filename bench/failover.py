"""Failover times of two keepers (real `nosana-keeper run` processes, one local chain, the
real kube-apiserver from scripts/install-tools.sh): the leader gets SIGTERM or SIGKILL right
when new work becomes due; measured are the seconds until the standby holds the Lease and
until its first transaction lands. Task intervals are 1 s, so "first send" is the takeover
plus at most one interval plus a pass.

    .venv/bin/python bench/failover.py [--trials N]
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from keeper.localnet.chain import LocalChain  # noqa: E402
from keeper.localnet.standalone import write_keypairs  # noqa: E402
from tests.integration.replicas import Pair, start_replica, wait_for  # noqa: E402
from tests.kube_api import ADMIN_TOKEN, KubeApi, running_api_server  # noqa: E402

DAY = 86_400
TIMINGS = {  # name -> (lease duration, renew deadline, retry period), seconds
    "tests (3 / 2 / 0.5)": (3, 2.0, 0.5),
    "defaults (15 / 10 / 2)": (15, 10.0, 2.0),
}
NEXT_DAY_WORK = ("done_not_expired", "done_expiry_boundary")


def trial(
    api: KubeApi, workdir: Path, timings: tuple[int, float, float], how: int
) -> tuple[float, float]:
    lease_s, renew_s, retry_s = timings
    kubeconfig = api.kubeconfig(ADMIN_TOKEN, "bench", namespace="default")
    lease = f"bench-{workdir.name}".lower().replace("_", "-")
    settings = {
        "KEEPER_LEADER_ELECTION_ENABLED": "true",
        "KEEPER_LEADER_ELECTION_KUBECONFIG": str(kubeconfig),
        "KEEPER_LEADER_ELECTION_NAMESPACE": "default",
        "KEEPER_LEADER_ELECTION_LEASE_NAME": lease,
        "KEEPER_LEADER_ELECTION_LEASE_DURATION_SECONDS": str(lease_s),
        "KEEPER_LEADER_ELECTION_RENEW_DEADLINE_SECONDS": str(renew_s),
        "KEEPER_LEADER_ELECTION_RETRY_PERIOD_SECONDS": str(retry_s),
    }
    with LocalChain.run_in_thread("demo", port=0, auto_advance=False) as chain:
        keys = write_keypairs(chain.world, workdir / "keys")
        replicas = {}
        try:
            for name, wallet in (("keeper-a", "alice"), ("keeper-b", "bob")):
                replicas[name] = start_replica(
                    chain, name=name, wallet=wallet, keys=keys, settings=settings, workdir=workdir
                )
            pair = Pair(chain, api, lease, "default", replicas)
            leader = pair.leader()
            standby = pair.other(leader)
            wait_for(lambda: pair.due("done_expired_alice_1"), 60, "the leader cleans")
            signalled = time.monotonic()
            leader.process.send_signal(how)
            chain.set_clock(chain.unix_timestamp + DAY)
            wait_for(lambda: pair.holder() == standby.name, 120, "takeover")
            lease_taken = time.monotonic() - signalled
            wait_for(lambda: pair.due(*NEXT_DAY_WORK), 120, "first send")
            first_send = time.monotonic() - signalled
            pair.check_invariants()
            return lease_taken, first_send
        finally:
            for replica in replicas.values():
                replica.stop(signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=3)
    trials = parser.parse_args().trials
    with tempfile.TemporaryDirectory() as tmp, running_api_server(Path(tmp) / "kube") as api:
        print(
            "| timings (lease / renew / retry, s) | signal "
            "| lease taken s (median, max) | first send landed s (median, max) |"
        )
        print("|---|---|---:|---:|")
        run = 0
        for label, timings in TIMINGS.items():
            for how in (signal.SIGTERM, signal.SIGKILL):
                taken, sent = [], []
                for _ in range(trials):
                    run += 1
                    workdir = Path(tmp) / f"run{run}"
                    workdir.mkdir()
                    lease_taken, first_send = trial(api, workdir, timings, how)
                    taken.append(lease_taken)
                    sent.append(first_send)
                print(
                    f"| {label} | {signal.Signals(how).name} "
                    f"| {statistics.median(taken):.2f}, {max(taken):.2f} "
                    f"| {statistics.median(sent):.2f}, {max(sent):.2f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
