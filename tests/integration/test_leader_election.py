"""Two keepers, one sender: real `nosana-keeper run` processes against one local chain and a
real kube-apiserver (tests/kube_api.py), authenticating as the chart's ServiceAccount with
the Role the chart installed. Each keeper pays fees from its own wallet, so the chain's
transaction log tells who acted on what; both claim as the same node.

Short lease timings (3 s lease, 2 s renew deadline, 0.5 s retry) and 1 s task intervals keep
the failovers quick; bench/failover.py measures them at these and at the default timings.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from keeper.localnet.chain import LocalChain
from keeper.localnet.standalone import write_keypairs
from keeper.program.instructions import MaintenanceInstruction
from tests.conftest import InstalledChart
from tests.integration.replicas import INTERVAL_S, Pair, Replica, start_replica, wait_for

LEASE_S, RENEW_S, RETRY_S = 3, 2.0, 0.5
DAY = 86_400
# A pass (scan, re-check, send, confirm) on a shared 2-core machine: the slack on each bound.
PASS_SLACK_S = 8.0


@pytest.fixture
def pair(
    installed_chart: InstalledChart, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Pair]:
    """Keepers a and b (wallets alice and bob) contending for a Lease of their own."""
    api, ns = installed_chart.api, installed_chart.namespace
    token = api.service_account_token(ns, installed_chart.service_account)
    kubeconfig = api.kubeconfig(token, f"sa-{tmp_path.name}", namespace=ns)
    lease = f"lease-{request.node.name.replace('_', '-')[:40]}".rstrip("-")
    timings = {"LEASE_DURATION_SECONDS": str(LEASE_S), **getattr(request, "param", {})}
    settings = {
        "KEEPER_LEADER_ELECTION_ENABLED": "true",
        "KEEPER_LEADER_ELECTION_KUBECONFIG": str(kubeconfig),
        "KEEPER_LEADER_ELECTION_NAMESPACE": ns,
        "KEEPER_LEADER_ELECTION_LEASE_NAME": lease,
        "KEEPER_LEADER_ELECTION_LEASE_DURATION_SECONDS": timings["LEASE_DURATION_SECONDS"],
        "KEEPER_LEADER_ELECTION_RENEW_DEADLINE_SECONDS": str(RENEW_S),
        "KEEPER_LEADER_ELECTION_RETRY_PERIOD_SECONDS": str(RETRY_S),
    }
    with LocalChain.run_in_thread("demo", port=0, auto_advance=False) as chain:
        keys = write_keypairs(chain.world, tmp_path / "keys")
        replicas: dict[str, Replica] = {}
        try:
            for name, wallet in (("keeper-a", "alice"), ("keeper-b", "bob")):
                replicas[name] = start_replica(
                    chain, name=name, wallet=wallet, keys=keys, settings=settings, workdir=tmp_path
                )
            yield Pair(chain, api, lease, ns, replicas)
        finally:
            for replica in replicas.values():
                replica.stop(signal.SIGKILL)
            for replica in replicas.values():
                text = replica.log.read_text(errors="replace")
                assert "Traceback" not in text, text[-3000:]


FIRST_WORK = ("done_expired_alice_1", "done_expired_gated", "stopped_open", "stopped_gated")
# Done jobs in the open market (1 day expiry) that a day later are expired too.
NEXT_DAY_WORK = ("done_not_expired", "done_expiry_boundary")


def _claimed(pair: Pair) -> bool:
    """Both claimable stopped jobs got their (single) run."""
    return sum(1 for _p, k, _a, ok in pair.acts() if k is MaintenanceInstruction.CLAIM and ok) >= 2


def _first_work_done(pair: Pair) -> bool:
    return pair.due(*FIRST_WORK[:2]) and _claimed(pair)


def test_two_keepers_exactly_one_sends(pair: Pair) -> None:
    leader = pair.leader()
    standby = pair.other(leader)
    wait_for(lambda: _first_work_done(pair), 60, "the leader cleans and claims")
    assert pair.payers() == {leader.payer}
    # The standby started after the leader: the leader's first work may be done before it
    # is through its own start (readiness "starting"), so its readiness is awaited.
    wait_for(lambda: standby.get("/readyz")[0] == 200, 30, "the standby ready")
    status, body = standby.get("/readyz")
    assert status == 200, body
    assert json.loads(body)["role"] == "standby"
    assert json.loads(leader.get("/readyz")[1])["role"] == "leader"
    assert leader.metric("nosana_keeper_leader") == 1
    assert standby.metric("nosana_keeper_leader") == 0

    # The leader freezes (a GC pause, a stopped VM) with work due: its lease has not run out
    # yet, so the standby, which plans the same work every pass, must still send nothing.
    leader.process.send_signal(signal.SIGSTOP)
    try:
        pair.chain.set_clock(pair.chain.unix_timestamp + DAY)
        time.sleep(LEASE_S - 1.0)
        assert pair.sent_by(standby) == 0
        scans = 'nosana_keeper_scans_total{outcome="ok",task="finished_jobs"}'
        assert (standby.metric(scans) or 0) > 0  # it kept its view warm meanwhile
        wait_for(lambda: pair.due(*NEXT_DAY_WORK), 30, "the standby takes over and sends")
        assert pair.holder() == standby.name
    finally:
        leader.process.send_signal(signal.SIGCONT)
    # The old leader wakes with a stale lease: it must not send, the new leader does.
    acted_before = len(pair.acts())
    pair.chain.set_clock(pair.chain.unix_timestamp + 2 * DAY)
    wait_for(lambda: pair.due("done_not_expired_gated"), 30, "the new leader sends")
    time.sleep(2 * INTERVAL_S)
    assert {payer for payer, *_ in pair.acts()[acted_before:]} == {standby.payer}
    wait_for(lambda: leader.role() == "standby", 10, "the old leader says standby")
    pair.check_invariants()


def test_sigkill_of_the_leader_the_standby_sends_within_lease_plus_one_interval(
    pair: Pair,
) -> None:
    leader = pair.leader()
    standby = pair.other(leader)
    wait_for(lambda: _first_work_done(pair), 60, "the leader cleans and claims")
    leader.stop(signal.SIGKILL)
    pair.chain.set_clock(pair.chain.unix_timestamp + DAY)  # new work for whoever leads
    took = wait_for(
        lambda: pair.due(*NEXT_DAY_WORK),
        LEASE_S + RETRY_S + INTERVAL_S + PASS_SLACK_S,
        "the standby takes over and cleans the next day's jobs",
    )
    print(f"takeover after SIGKILL: first send landed {took:.2f}s after the kill")  # noqa: T201
    assert pair.holder() == standby.name
    assert pair.sent_by(standby) > 0
    pair.check_invariants()


def test_sigterm_of_the_leader_hands_over_within_3_seconds(pair: Pair) -> None:
    leader = pair.leader()
    standby = pair.other(leader)
    wait_for(lambda: _first_work_done(pair), 60, "the leader cleans and claims")
    leader.process.send_signal(signal.SIGTERM)
    took = wait_for(lambda: pair.holder() == standby.name, 3, "the standby holds the lease")
    print(f"takeover after SIGTERM: lease held by the standby after {took:.2f}s")  # noqa: T201
    assert leader.process.wait(timeout=60) == 0
    assert "lease released" in leader.log.read_text()
    pair.chain.set_clock(pair.chain.unix_timestamp + DAY)
    wait_for(lambda: pair.due(*NEXT_DAY_WORK), INTERVAL_S + PASS_SLACK_S, "the new leader sends")
    pair.check_invariants()


# A long lease here: between the renew deadline (2 s) and the lease's end (8 s) the leader
# still holds the lease but must already have stopped sending.
OUTAGE_LEASE_S = 8


@pytest.mark.parametrize("pair", [{"LEASE_DURATION_SECONDS": str(OUTAGE_LEASE_S)}], indirect=True)
def test_api_server_outage_stops_the_leader_and_it_resumes(pair: Pair) -> None:
    leader = pair.leader()
    wait_for(lambda: _first_work_done(pair), 60, "the leader cleans and claims")
    sent_before = len(pair.acts())
    pair.api.stop_server()
    try:
        time.sleep(RENEW_S + 0.5)  # past the leader's renew deadline, inside its lease
        pair.chain.set_clock(pair.chain.unix_timestamp + DAY)  # work due from now on
        time.sleep(3 * INTERVAL_S)
        assert len(pair.acts()) == sent_before, "the leader sent past its renew deadline"
        assert [r.role() for r in pair.replicas.values()] == ["standby", "standby"]
        failures = leader.metric('nosana_keeper_lease_renew_failures_total{reason="api_error"}')
        timeouts = leader.metric('nosana_keeper_lease_renew_failures_total{reason="timeout"}')
        assert (failures or 0) + (timeouts or 0) > 0
    finally:
        pair.api.start_server()
    wait_for(lambda: pair.due(*NEXT_DAY_WORK), 30, "a keeper leads again and sends")
    pair.check_invariants()
