"""Keeper replicas as real `nosana-keeper run` processes against one local chain, contending
for one Lease: start them, ask their /readyz and /metrics, read who holds the Lease and
what the chain's transaction log says each did. Shared by tests/integration/
test_leader_election.py and bench/failover.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from solders.pubkey import Pubkey

from keeper.localnet.chain import LocalChain
from keeper.program.instructions import MaintenanceInstruction, maintenance_kind
from tests.integration.conftest import LOCAL_PROFILE, keeper_env
from tests.kube_api import KubeApi, free_port

INTERVAL_S = 1.0


@dataclass
class Replica:
    name: str
    payer: Pubkey
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()
        except OSError:
            return 0, ""

    def role(self) -> str | None:
        status, body = self.get("/readyz")
        return json.loads(body).get("role") if status else None

    def metric(self, line_start: str) -> float | None:
        _status, body = self.get("/metrics")
        for line in body.splitlines():
            if line.startswith(line_start + " "):
                return float(line.rsplit(" ", 1)[1])
        return None

    def stop(self, signum: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signum)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def wait_for(predicate: Callable[[], object], limit: float, what: str) -> float:
    """Seconds until ``predicate`` held (polled every 0.1 s); fails after ``limit``."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"not within {limit:.0f}s: {what}")


@dataclass
class Pair:
    chain: LocalChain
    api: KubeApi
    lease: str
    namespace: str
    replicas: dict[str, Replica]

    def holder(self) -> str | None:
        lease = self.api.get_json(
            f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases/{self.lease}"
        )
        return None if lease is None else lease["spec"].get("holderIdentity")

    def leader(self) -> Replica:
        wait_for(lambda: self.holder() in self.replicas, 60, "a keeper holds the lease")
        holder = self.holder()
        assert holder is not None
        return self.replicas[holder]

    def other(self, replica: Replica) -> Replica:
        (other,) = (r for r in self.replicas.values() if r is not replica)
        return other

    def acts(self) -> list[tuple[Pubkey, MaintenanceInstruction, Pubkey, bool]]:
        """(fee payer, instruction, account acted on, succeeded) for every landed one."""
        program = self.chain.world.program_id
        found = []
        for record in self.chain.transactions():
            message = record.transaction.message
            keys = message.account_keys
            for ix in message.instructions:
                if keys[ix.program_id_index] != program:
                    continue
                target = keys[ix.accounts[0]]
                kind = _kind(program, keys, ix)
                found.append((keys[0], kind, target, record.err is None))
        return found

    def payers(self) -> set[Pubkey]:
        return {payer for payer, _kind, _account, _ok in self.acts()}

    def sent_by(self, replica: Replica) -> int:
        return sum(1 for payer, *_ in self.acts() if payer == replica.payer)

    def check_invariants(self) -> None:
        """Each account acted on by one keeper only; no job claimed (run created) twice."""
        by_account: dict[Pubkey, set[Pubkey]] = defaultdict(set)
        claims: dict[Pubkey, int] = defaultdict(int)
        for payer, kind, account, ok in self.acts():
            by_account[account].add(payer)
            if kind is MaintenanceInstruction.CLAIM and ok:
                claims[account] += 1
        assert {a: p for a, p in by_account.items() if len(p) > 1} == {}
        assert {j: n for j, n in claims.items() if n > 1} == {}

    def due(self, *labels: str) -> bool:
        """The demo world's accounts with these labels are closed."""
        world = self.chain.world
        return all(self.chain.get_account(world.labels[label]) is None for label in labels)


def _kind(program: Pubkey, keys: list[Pubkey], ix: object) -> MaintenanceInstruction:
    from solders.instruction import AccountMeta, CompiledInstruction, Instruction  # noqa: PLC0415

    assert isinstance(ix, CompiledInstruction)
    metas = [AccountMeta(keys[i], is_signer=False, is_writable=False) for i in ix.accounts]
    kind = maintenance_kind(Instruction(program, bytes(ix.data), metas), program)
    assert kind is not None, "the keeper signed something that is not a maintenance instruction"
    return kind


def start_replica(
    chain: LocalChain,
    *,
    name: str,
    wallet: str,
    keys: dict[str, Path],
    settings: dict[str, str],
    workdir: Path,
    interval_s: float = INTERVAL_S,
) -> Replica:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("KEEPER_")},
        **keeper_env(chain),
        "KEEPER_CLAIM_NODE_KEYPAIR": str(keys["keeper"]),  # both claim as the world's node
        "KEEPER_QUIT_ENABLED": "false",  # quitAdmin needs the admin key, which neither holds
        "KEEPER_FEES_BALANCE_FLOOR_LAMPORTS": "0",
        "KEEPER_CLEAN_INTERVAL_SECONDS": str(interval_s),
        "KEEPER_CLAIM_INTERVAL_SECONDS": str(interval_s),
        "KEEPER_SCHEDULE_JITTER_SECONDS": "0",
        # Live mode on, resyncing as often as the tasks poll: the tests jump the chain clock
        # by days, and a job that was Done but not yet due at the last full read is acted on
        # at the next resync (the live feed only files jobs it sees change).
        "KEEPER_DISCOVERY_RESYNC_INTERVAL_SECONDS": str(interval_s),
        "KEEPER_METRICS_HOST": "127.0.0.1",
        "KEEPER_METRICS_PORT": str(port),
        "KEEPER_LEADER_ELECTION_IDENTITY": name,
        **settings,
    }
    command = [sys.executable, "-m", "keeper", "run", "--config", str(LOCAL_PROFILE)]
    command += ["--rpc-url", chain.url, "--keypair", str(keys[wallet])]
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=out)
    replica = Replica(name, chain.world.keypairs[wallet].pubkey(), port, process, log)
    # /healthz answers as soon as the port is bound; /readyz says "starting" until the
    # start-up checks passed and the keeper serves its real checks.
    wait_for(lambda: _started(replica), 60, f"{name} is past start-up")
    return replica


def _started(replica: Replica) -> bool:
    status, body = replica.get("/readyz")
    return status != 0 and '"starting"' not in body
