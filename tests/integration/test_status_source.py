"""When signature statuses cannot be read, or lie, outcomes and money follow the chain.

The hostile proxy sits between the keeper and the local chain. The truth is read from the
chain itself: the fees of the transactions that landed (the keeper pays every one) and
the lamports of the program accounts that are gone.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from solders.pubkey import Pubkey

from keeper.localnet.chain import LocalChain
from keeper.localnet.model import Account
from keeper.localnet.standalone import write_keypairs
from tests.hostile_rpc import HostileRpc, Rule, confirmed_statuses, null_result
from tests.integration.conftest import KeeperCli, keeper_env, snapshot

STATUS_DOWN = {"code": -32603, "message": "status cache unavailable"}
CLOSES_ONLY = {"KEEPER_CLAIM_ENABLED": "false"}


@pytest.fixture
def fast_chain() -> Iterator[LocalChain]:
    """Slots every 20 ms: a blockhash expires (150 blocks) in about three seconds."""
    with LocalChain.run_in_thread("demo", port=0, slot_ms=20) as chain:
        yield chain


def proxied_cli(chain: LocalChain, proxy: HostileRpc, keys: Path) -> KeeperCli:
    """The keeper pointed at the proxy in front of ``chain``."""
    paths = write_keypairs(chain.world, keys)
    return KeeperCli(chain, paths["keeper"], keeper_env(chain, claim=False), rpc_url=proxy.url)


def chain_fees(chain: LocalChain) -> int:
    return chain._on_loop(lambda: sum(r.fee for r in chain.ledger.transactions()))


def reclaimed(chain: LocalChain, before: dict[Pubkey, Account]) -> int:
    after = snapshot(chain)
    program = chain.world.program_id
    return sum(
        account.lamports
        for key, account in before.items()
        if account.owner == program and key not in after
    )


@pytest.fixture
def proxy(fast_chain: LocalChain) -> Iterator[HostileRpc]:
    with HostileRpc.run_in_thread(fast_chain.url) as hostile:
        yield hostile


@pytest.mark.parametrize(
    "rules",
    [
        pytest.param([Rule(method="getSignatureStatuses", rewrite=null_result())], id="null"),
        pytest.param([Rule(method="getSignatureStatuses", error=STATUS_DOWN)], id="failing"),
        pytest.param(
            [
                Rule(method="getSignatureStatuses", error=STATUS_DOWN),
                Rule(method="getTransaction", error=STATUS_DOWN),
            ],
            id="failing-with-history",
        ),
    ],
)
def test_landed_transactions_count_as_landed_when_statuses_cannot_be_read(
    fast_chain: LocalChain, proxy: HostileRpc, tmp_path: Path, rules: list[Rule]
) -> None:
    cli = proxied_cli(fast_chain, proxy, tmp_path / "keys")
    before = snapshot(fast_chain)
    proxy.set_rules(*rules)

    result = cli.invoke("run", "--once", extra_env=CLOSES_ONLY)

    assert result.exit_code == 0, result.output
    summary = cli.summary(result)
    assert summary["sent"] > 0
    assert summary["confirmed"] == summary["sent"], result.stderr
    assert summary["fees_lamports"] == chain_fees(fast_chain) > 0
    assert summary["reclaimed_lamports"] == reclaimed(fast_chain, before) > 0


def test_a_faked_confirmation_reclaims_nothing_and_is_unknown(
    cli: KeeperCli, tmp_path: Path
) -> None:
    chain = cli.chain
    with HostileRpc.run_in_thread(chain.url) as hostile:
        proxied = proxied_cli(chain, hostile, tmp_path / "proxied")
        chain.set_faults(drop_every=1)  # accepted, never landed
        hostile.set_rules(Rule(method="getSignatureStatuses", rewrite=confirmed_statuses()))
        before = snapshot(chain)

        result = proxied.invoke("run", "--once", extra_env=CLOSES_ONLY)

    summary = proxied.summary(result)
    assert summary["sent"] > 0
    assert reclaimed(chain, before) == 0  # nothing closed on chain...
    assert summary["reclaimed_lamports"] == 0  # ...and nothing counted as reclaimed
    assert summary["confirmed"] == 0
    assert summary["failed"] == summary["sent"]
    tasks = summary["tasks"]
    assert sum(task["unknown"] for task in tasks.values()) == summary["sent"]  # type: ignore[index, union-attr]


def test_the_fee_budget_counts_transactions_whose_status_cannot_be_read(
    fast_chain: LocalChain, proxy: HostileRpc, tmp_path: Path
) -> None:
    cli = proxied_cli(fast_chain, proxy, tmp_path / "keys")
    proxy.set_rules(Rule(method="getSignatureStatuses", error=STATUS_DOWN))
    cap = 200_000
    budget = {
        **CLOSES_ONLY,
        "KEEPER_FEES_MAX_FEE_PER_TRANSACTION_LAMPORTS": str(cap),
        "KEEPER_SEND_MAX_IN_FLIGHT": "1",  # one batch at a time: only spending can pause
        # Room for a reservation and a little more (one transaction's fee is a little over
        # 5,000): once two landed fees are counted, the third transaction must wait.
        "KEEPER_FEES_HOURLY_BUDGET_LAMPORTS": str(cap + 6_000),
    }

    result = cli.invoke("run", "--once", extra_env=budget)

    summary = cli.summary(result)
    paused = sum(
        task["skipped"].get("paused_fee_budget", 0)  # type: ignore[index, union-attr]
        for task in summary["tasks"].values()  # type: ignore[union-attr]
    )
    assert paused > 0, result.stderr
    assert summary["fees_lamports"] == chain_fees(fast_chain) > 0
