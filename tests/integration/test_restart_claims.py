"""Killed after sending claims, restarted at once: still one run per job.

Sends are slow to land (the chain's ``land_delay_ms``), so the restarted keeper's re-check
finds no run yet and claims the same jobs again. Each claim's run account is derived from
the node's key and the job, so the repeat tries to create the same account: the System
program refuses it (AccountAlreadyInUse), and the keeper counts it as ``already_claimed``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from solders.pubkey import Pubkey

from keeper.localnet.chain import LocalChain
from keeper.program.layouts import RUN_DISCRIMINATOR, decode_run
from tests.integration.conftest import LOCAL_PROFILE, KeeperCli, snapshot

LAND_DELAY_MS = 8_000  # long enough for the restarted keeper to send before anything lands
CLAIMS_ONLY = {"KEEPER_QUIT_ENABLED": "false", "KEEPER_CLEAN_ENABLED": "false"}


def runs_per_job(chain: LocalChain) -> Counter[Pubkey]:
    return Counter(
        decode_run(account.data).job
        for account in snapshot(chain).values()
        if account.owner == chain.world.program_id and account.data[:8] == RUN_DISCRIMINATOR
    )


def wait_for(predicate: object, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def start_keeper(cli: KeeperCli, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "keeper", "run", "--once"]
    command += ["--config", str(LOCAL_PROFILE), "--rpc-url", cli.chain.url]
    command += ["--keypair", str(cli.keypair)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEPER_")}
    env |= cli.env | CLAIMS_ONLY
    with log.open("wb") as stderr:
        return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=stderr)


def test_a_keeper_killed_after_sending_claims_and_restarted_never_claims_twice(
    cli: KeeperCli, tmp_path: Path
) -> None:
    chain = cli.chain
    stopped = {chain.world.labels["stopped_open"], chain.world.labels["stopped_gated"]}
    before = runs_per_job(chain)
    assert not stopped & set(before)  # the jobs to claim have no run yet
    chain.set_faults(land_delay_ms=LAND_DELAY_MS)

    first = start_keeper(cli, tmp_path / "first.log")
    try:
        wait_for(lambda: chain.landing() > 0)  # its claims are sent, none landed yet
    finally:
        first.kill()  # SIGKILL: nothing remembered, nothing cleaned up
        first.wait()
    assert runs_per_job(chain) == before
    # Slots move while it restarts: a new blockhash, so a new transaction and signature.
    chain.advance_slots(1)

    restarted = cli.invoke("run", "--once", extra_env=CLAIMS_ONLY)

    assert restarted.exit_code == 0, restarted.output
    wait_for(lambda: chain.landing() == 0)
    after = runs_per_job(chain)
    assert {job: after[job] for job in stopped} == dict.fromkeys(stopped, 1)
    assert after - before == Counter(dict.fromkeys(stopped, 1))
    tasks = cli.summary(restarted)["tasks"]
    skipped = tasks["stopped_jobs"]["skipped"]  # type: ignore[index]
    # The repeat was refused on chain and counted, not reported as a failure.
    assert skipped.get("already_claimed", 0) >= 1, restarted.stderr
