"""The keeper resolves the demo world exactly as each labelled case expects."""

from __future__ import annotations

import json

from solders.pubkey import Pubkey

from keeper.localnet.chain import LocalChain
from keeper.program.layouts import RUN_DISCRIMINATOR, decode_run
from tests.integration.conftest import KeeperCli, snapshot


def _expectations(chain: LocalChain) -> dict[str, tuple[str, str]]:
    return {
        label: tuple(outcome.split(":", 1))  # type: ignore[misc]
        for label, outcome in chain.world.expectations.items()
    }


def _runs_of(chain: LocalChain, job: Pubkey) -> list[Pubkey]:
    return [
        key
        for key, account in snapshot(chain).items()
        if account.data[:8] == RUN_DISCRIMINATOR and decode_run(account.data).job == job
    ]


def test_dry_run_plans_exactly_the_expected_actions_and_sends_nothing(cli: KeeperCli) -> None:
    chain = cli.chain
    before = {key: (a.lamports, a.data) for key, a in snapshot(chain).items()}
    result = cli.invoke("run", "--once", "--dry-run")
    assert result.exit_code == 0, result.output
    planned = {
        (line["account"], line["action"], line["reason"])
        for line in map(json.loads, result.stdout.strip().splitlines()[:-1])
    }
    expected = {
        (str(chain.world.labels[label]), action, reason)
        for label, (action, reason) in _expectations(chain).items()
        if action != "leave"
    }
    assert planned == expected
    after = {key: (a.lamports, a.data) for key, a in snapshot(chain).items()}
    assert after == before  # dry-run sends nothing: not even a fee was charged


def test_run_once_resolves_every_case_and_leaves_the_rest(cli: KeeperCli) -> None:
    chain = cli.chain
    before = {key: a.data for key, a in snapshot(chain).items()}
    result = cli.invoke("run", "--once")
    assert result.exit_code == 0, result.output
    summary = cli.summary(result)
    assert summary["errors"] == 0
    for label, (action, _reason) in _expectations(chain).items():
        key = chain.world.labels[label]
        account = chain.get_account(key)
        if action in {"clean", "cleanAdmin", "quitAdmin"}:
            assert account is None, f"{label} should have been closed by {action}"
        elif action == "claim":
            assert len(_runs_of(chain, key)) == 1, f"{label} should have exactly one run"
        elif before.get(key) is not None:
            assert account is not None, f"{label} must be left alone"
            assert account.data == before[key], f"{label} must be unchanged"
    assert summary["confirmed"] == sum(
        1 for action, _ in _expectations(chain).values() if action != "leave"
    )


def test_second_pass_finds_nothing_left_to_do(cli: KeeperCli) -> None:
    assert cli.invoke("run", "--once").exit_code == 0
    again = cli.invoke("run", "--once")
    assert again.exit_code == 0, again.output
    assert cli.summary(again)["planned"] == 0  # claims are not repeated: the job has a run now
