"""Fee policy and spending guards, met by the real CLI over HTTP: a failing fee source
(the ``fee_source_error`` fault) and the rolling hourly fee budget."""

from __future__ import annotations

import base64
import dataclasses
import json
import struct
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import Result
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

from keeper.localnet.chain import LocalChain
from keeper.localnet.standalone import write_keypairs
from keeper.localnet.worlds import load_world
from keeper.program.ids import COMPUTE_BUDGET_PROGRAM
from keeper.program.limits import LAMPORTS_PER_SIGNATURE
from keeper.service import cli as cli_module
from keeper.service.metrics import Metrics, new_metrics
from tests.integration.conftest import KeeperCli, keeper_env

SET_COMPUTE_UNIT_PRICE = 3
MARKET_PRICE = 50_000  # what every recent slot paid: the price when the fee source answers
FLOOR = 3_000  # the configured floor, distinct from the default so it is plainly the one used
CAP_6K = 6_000  # lamports: a fee cap just above a one-signature transaction's fee


@pytest.fixture
def keeper_metrics(monkeypatch: pytest.MonkeyPatch) -> list[Metrics]:
    """The Metrics of every keeper the CLI starts in this test, to read after it exits."""
    made: list[Metrics] = []

    def capture() -> Metrics:
        metrics = new_metrics()
        made.append(metrics)
        return metrics

    monkeypatch.setattr(cli_module, "new_metrics", capture)
    return made


def _sample(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def _events(result: Result, event: str) -> list[dict[str, object]]:
    """The keeper's JSON log lines (stderr) with this ``event``."""
    found = []
    for line in result.stderr.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("event") == event:
            found.append(entry)
    return found


def _rpc(chain: LocalChain, method: str, *params: object) -> object:
    """One JSON-RPC call over HTTP, as the keeper makes it; the answer's ``result``."""
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    answer = httpx.post(chain.url, json=body).json()
    assert answer.get("result") is not None, answer
    return answer["result"]


def _landed(chain: LocalChain, result: Result) -> dict[str, dict[str, object]]:
    """getTransaction of every transaction the keeper logged as confirmed."""
    signatures = {str(e["signature"]) for e in _events(result, "action confirmed")}
    landed = {}
    for signature in sorted(signatures):
        transaction = _rpc(chain, "getTransaction", signature, {"encoding": "base64"})
        assert isinstance(transaction, dict)
        landed[signature] = transaction
    return landed


def _unit_prices(landed: dict[str, object]) -> list[int]:
    """Every SetComputeUnitPrice in one landed transaction (micro-lamports per CU)."""
    raw = base64.b64decode(landed["transaction"][0])  # type: ignore[index]
    message = VersionedTransaction.from_bytes(raw).message
    keys = message.account_keys
    prices = []
    for ix in message.instructions:
        data = bytes(ix.data)
        if keys[ix.program_id_index] != COMPUTE_BUDGET_PROGRAM or not data:
            continue
        if data[0] == SET_COMPUTE_UNIT_PRICE:
            prices.append(struct.unpack_from("<Q", data, 1)[0])
    return prices


def _signatures_of(landed: dict[str, object]) -> int:
    raw = base64.b64decode(landed["transaction"][0])  # type: ignore[index]
    return len(VersionedTransaction.from_bytes(raw).signatures)


def _fee(landed: dict[str, object]) -> int:
    fee = landed["meta"]["fee"]  # type: ignore[index]
    assert isinstance(fee, int)
    return fee


def _assert_cleans_paused_by(metrics: Metrics, result: Result, *, cause: str, paused: int) -> None:
    """One guard paused ``paused`` cleans, the other none: gauges, counter and logs agree."""
    other = {"fee_budget": "balance_floor", "balance_floor": "fee_budget"}[cause]
    assert _sample(metrics, "nosana_keeper_sending_paused", cause=cause) == 1
    assert _sample(metrics, "nosana_keeper_sending_paused", cause=other) == 0
    failed = _sample(
        metrics, "nosana_keeper_actions_failed_total", action="clean", reason=f"paused_{cause}"
    )
    assert failed == paused
    pauses = _events(result, "sending paused")
    assert {e["cause"] for e in pauses} == {cause}
    assert sum(int(str(e["actions"])) for e in pauses) == paused


def _skipped(summary: dict[str, object], reason: str) -> int:
    tasks = summary["tasks"]
    assert isinstance(tasks, dict)
    return sum(int(task["skipped"].get(reason, 0)) for task in tasks.values())


def _transactions(summary: dict[str, object]) -> int:
    """Transactions the keeper sent (and signed) in the pass, over every task."""
    tasks = summary["tasks"]
    assert isinstance(tasks, dict)
    return sum(int(task["transactions"]) for task in tasks.values())


# -- the fee source fails ------------------------------------------------------------------


def test_a_failing_fee_source_pays_the_floor_loudly_and_still_confirms(
    cli: KeeperCli, keeper_metrics: list[Metrics]
) -> None:
    chain = cli.chain
    chain.set_prioritization_fees([MARKET_PRICE] * 8)  # the price, were the source answering
    chain.set_faults(fee_source_error_every=1)  # every getRecentPrioritizationFees fails

    result = cli.invoke("run", "--once", extra_env={"KEEPER_FEES_FLOOR_MICRO_LAMPORTS": str(FLOOR)})

    assert result.exit_code == 0, result.output
    summary = cli.summary(result)
    assert summary["errors"] == 0
    assert summary["failed"] == 0
    assert summary["planned"] > 0
    assert summary["confirmed"] == summary["planned"]  # the failure stopped nothing
    # Every transaction asked the fee source, and every ask failed.
    failures = chain.faults.injected["fee_source_error"]
    landed = _landed(chain, result)
    assert failures == len(landed) == _transactions(summary)
    # On chain: each transaction carries exactly one unit price, the configured floor —
    # neither the market price the source would have given nor zero — and paid for it.
    for signature, transaction in landed.items():
        assert _unit_prices(transaction) == [FLOOR], signature
        assert _fee(transaction) > LAMPORTS_PER_SIGNATURE * _signatures_of(transaction)
    assert summary["fees_lamports"] == sum(_fee(t) for t in landed.values())
    # Metrics: one fallback per failed ask; the price chosen is the floor.
    (metrics,) = keeper_metrics
    assert _sample(metrics, "nosana_keeper_priority_fee_fallbacks_total") == failures
    assert _sample(metrics, "nosana_keeper_priority_fee_micro_lamports") == FLOOR
    assert (
        _sample(
            metrics,
            "nosana_keeper_rpc_requests_total",
            method="getRecentPrioritizationFees",
            outcome="rpc_error",
        )
        == failures
    )
    # Logs: the source's failure with the node's error, and the fallback with its price.
    source_failed = _events(result, "fee source failed")
    assert len(source_failed) == failures
    for entry in source_failed:
        assert entry["level"] == "warning"
        assert "getRecentPrioritizationFees" in str(entry["error"])
        assert "-32603" in str(entry["error"])
    fallbacks = _events(result, "fee source failed: paying the floor")
    assert [(e["level"], e["price"]) for e in fallbacks] == [("warning", FLOOR)] * failures


def test_one_failed_fee_query_pays_the_floor_once_then_the_market_price(
    cli: KeeperCli, keeper_metrics: list[Metrics]
) -> None:
    chain = cli.chain
    chain.set_prioritization_fees([MARKET_PRICE] * 8)
    chain.set_faults(fee_source_error_next=1)  # only the first query fails

    result = cli.invoke("run", "--once", extra_env={"KEEPER_FEES_FLOOR_MICRO_LAMPORTS": str(FLOOR)})

    assert result.exit_code == 0, result.output
    summary = cli.summary(result)
    assert summary["failed"] == 0
    assert summary["confirmed"] == summary["planned"] > 0
    landed = _landed(chain, result)
    assert len(landed) >= 2  # at least one transaction each side
    prices = sorted(price for t in landed.values() for price in _unit_prices(t))
    assert prices == [FLOOR] + [MARKET_PRICE] * (len(landed) - 1)
    assert chain.faults.injected["fee_source_error"] == 1
    (metrics,) = keeper_metrics
    assert _sample(metrics, "nosana_keeper_priority_fee_fallbacks_total") == 1
    assert len(_events(result, "fee source failed: paying the floor")) == 1


# -- the rolling hourly fee budget -----------------------------------------------------


@pytest.fixture
def due_chain() -> Iterator[LocalChain]:
    """100 due Done jobs, one market, one payer: five full transactions of cleans."""
    with LocalChain.run_in_thread(
        "scale", port=0, auto_advance=False, jobs=200, due_fraction=0.5, markets=1, payers=1
    ) as chain:
        yield chain


@pytest.fixture
def due_cli(due_chain: LocalChain, tmp_path: Path) -> KeeperCli:
    paths = write_keypairs(due_chain.world, tmp_path / "keys")
    return KeeperCli(due_chain, paths["keeper"], keeper_env(due_chain, claim=False))


def test_the_hourly_budget_stops_sending_and_is_never_overrun(
    due_cli: KeeperCli, keeper_metrics: list[Metrics]
) -> None:
    chain = due_cli.chain
    budget = 3 * CAP_6K  # room for three transactions at their cap
    due = chain.world.counts["due_jobs"]

    result = due_cli.invoke(
        "run",
        "--once",
        extra_env={
            "KEEPER_FEES_MAX_FEE_PER_TRANSACTION_LAMPORTS": str(CAP_6K),
            "KEEPER_FEES_HOURLY_BUDGET_LAMPORTS": str(budget),
        },
    )

    assert result.exit_code == 0, result.output  # a paused guard is not an error
    summary = due_cli.summary(result)
    assert summary["errors"] == 0
    assert summary["failed"] == 0
    assert summary["planned"] == due
    paused = _skipped(summary, "paused_fee_budget")
    landed = _landed(chain, result)
    fees = sum(_fee(t) for t in landed.values())
    # The guarantee: fees (plus claim rent, none here) within the hour never exceed the
    # budget, even with several transactions in flight at once (send.max_in_flight = 4).
    assert fees <= budget
    assert summary["fees_lamports"] == fees
    # It sends while a transaction at its cap still fits, then no more: every transaction
    # costs at least one signature (5,000), so after three a fourth cap cannot fit.
    assert len(landed) == _transactions(summary) == budget // CAP_6K
    assert budget - fees < CAP_6K
    assert all(_fee(t) <= CAP_6K for t in landed.values())
    # The rest is counted, not lost: planned = confirmed + paused, and the paused jobs
    # are still on chain for a later hour (a dry run plans exactly them).
    assert summary["confirmed"] == summary["sent"] > 0
    assert paused > 0
    assert summary["confirmed"] + paused == due
    dry = due_cli.invoke("run", "--once", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert len(dry.stdout.strip().splitlines()) - 1 == paused
    # Metrics and logs say so.
    metrics = keeper_metrics[0]  # the real pass (the dry run came after it)
    _assert_cleans_paused_by(metrics, result, cause="fee_budget", paused=paused)
    assert _sample(metrics, "nosana_keeper_fees_paid_lamports_total") == fees
    assert _sample(metrics, "nosana_keeper_transactions_total", outcome="confirmed") == len(landed)


def test_claim_rent_counts_against_the_hourly_budget(
    cli: KeeperCli, keeper_metrics: list[Metrics]
) -> None:
    plan = cli.invoke("run", "--once", "--dry-run")
    assert plan.exit_code == 0, plan.output
    claims = [
        json.loads(line)
        for line in plan.stdout.strip().splitlines()[:-1]
        if json.loads(line)["action"] == "claim"
    ]
    rent = -sum(int(claim["lamports"]) for claim in claims)
    assert rent > 0
    cap = 20_000  # above a claim transaction's fee (three signatures)
    budget = cap + rent - 1  # every fee fits; the claims' rent on top of a cap does not

    result = cli.invoke(
        "run",
        "--once",
        extra_env={
            "KEEPER_FEES_MAX_FEE_PER_TRANSACTION_LAMPORTS": str(cap),
            "KEEPER_FEES_HOURLY_BUDGET_LAMPORTS": str(budget),
        },
    )

    assert result.exit_code == 0, result.output
    summary = cli.summary(result)
    tasks = summary["tasks"]
    assert isinstance(tasks, dict)
    claim_task = tasks["stopped_jobs"]
    assert claim_task["skipped"].get("paused_fee_budget") == len(claims)
    assert claim_task["confirmed"] == 0
    assert summary["failed"] == 0
    assert summary["confirmed"] + len(claims) == summary["planned"]  # all else was done
    landed = _landed(cli.chain, result)
    assert summary["fees_lamports"] == sum(_fee(t) for t in landed.values()) <= budget
    metrics = keeper_metrics[-1]  # the real pass (the dry run came before it)
    assert _sample(metrics, "nosana_keeper_claim_rent_lamports_total") == 0
    assert _sample(
        metrics, "nosana_keeper_actions_failed_total", action="claim", reason="paused_fee_budget"
    ) == len(claims)


# -- the balance floor -------------------------------------------------------------------

FLOOR_LAMPORTS = 1_000_000  # the balance floor: the keeper may spend only what lies above it
ROOM = 2 * CAP_6K + CAP_6K // 2  # above the floor: two transactions at their cap, not three


@pytest.fixture
def poor_chain() -> Iterator[LocalChain]:
    """``due_chain``'s world (100 due jobs: five transactions), the keeper funded to the
    balance floor plus ``ROOM``."""
    world = load_world("scale", jobs=200, due_fraction=0.5, markets=1, payers=1)
    keeper = world.keeper.pubkey()
    world.accounts[keeper] = dataclasses.replace(
        world.accounts[keeper], lamports=FLOOR_LAMPORTS + ROOM
    )
    with LocalChain.run_in_thread(world, port=0, auto_advance=False) as chain:
        yield chain


@pytest.fixture
def poor_cli(poor_chain: LocalChain, tmp_path: Path) -> KeeperCli:
    paths = write_keypairs(poor_chain.world, tmp_path / "keys")
    return KeeperCli(poor_chain, paths["keeper"], keeper_env(poor_chain, claim=False))


def test_the_balance_floor_holds_with_batches_in_flight_at_once(
    poor_cli: KeeperCli, keeper_metrics: list[Metrics]
) -> None:
    chain = poor_cli.chain
    keeper = chain.world.keypairs["keeper"].pubkey()
    before = _balance(chain, keeper)
    assert before - FLOOR_LAMPORTS == ROOM
    due = chain.world.counts["due_jobs"]
    in_flight = 4

    result = poor_cli.invoke(
        "run",
        "--once",
        extra_env={
            "KEEPER_FEES_MAX_FEE_PER_TRANSACTION_LAMPORTS": str(CAP_6K),
            "KEEPER_FEES_BALANCE_FLOOR_LAMPORTS": str(FLOOR_LAMPORTS),
            "KEEPER_SEND_MAX_IN_FLIGHT": str(in_flight),
        },
    )

    assert result.exit_code == 0, result.output  # a paused guard is not an error
    summary = poor_cli.summary(result)
    assert summary["errors"] == 0
    assert summary["failed"] == 0
    assert summary["planned"] == due
    packed = _events(result, "packed")
    assert sum(int(str(e["transactions"])) for e in packed) >= 5 > in_flight
    landed = _landed(chain, result)
    fees = sum(_fee(t) for t in landed.values())
    # The guarantee: the balance never goes below the floor, though several batches pass
    # the guard before any of them lands (only fees leave the wallet: cleans pay rent to
    # the job's payer). Every fee is within the cap and costs at least one signature.
    after = _balance(chain, keeper)
    assert after == before - fees >= FLOOR_LAMPORTS
    assert summary["fees_lamports"] == fees
    assert all(LAMPORTS_PER_SIGNATURE <= _fee(t) <= CAP_6K for t in landed.values())
    # The bound: a batch is sent only if balance - held - cap >= floor, where held is the
    # cap of every batch in flight. The n-th send therefore had the earlier n - 1 in flight
    # (a cap each) or landed (at least a signature each) on top of its own cap, so
    # (n - 1) * LAMPORTS_PER_SIGNATURE + CAP_6K <= ROOM: n <= 2. The first two always
    # fit (ROOM >= 2 * CAP_6K), so exactly two land.
    bound = 1 + (ROOM - CAP_6K) // LAMPORTS_PER_SIGNATURE
    assert bound == 2 == ROOM // CAP_6K
    assert len(landed) == _transactions(summary) == bound
    # The rest is counted as paused at the floor, not lost and not failed.
    paused = _skipped(summary, "paused_balance_floor")
    assert summary["confirmed"] == summary["sent"] > 0
    assert paused > 0
    assert summary["confirmed"] + paused == due
    assert _skipped(summary, "paused_fee_budget") == 0
    (metrics,) = keeper_metrics
    _assert_cleans_paused_by(metrics, result, cause="balance_floor", paused=paused)
    assert _sample(metrics, "nosana_keeper_fees_paid_lamports_total") == fees
    assert _sample(metrics, "nosana_keeper_transactions_total", outcome="confirmed") == bound


def _balance(chain: LocalChain, key: Pubkey) -> int:
    """getBalance, as the keeper reads it."""
    answer = _rpc(chain, "getBalance", str(key))
    assert isinstance(answer, dict)
    value = answer["value"]
    assert isinstance(value, int), answer
    return value
