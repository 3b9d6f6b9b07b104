"""Integration fixtures: the embedded chain over real HTTP, and the real CLI in-process."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from solders.pubkey import Pubkey

from keeper.localnet.chain import LocalChain
from keeper.localnet.model import Account
from keeper.localnet.standalone import write_keypairs
from keeper.service.cli import main

ROOT = Path(__file__).resolve().parents[2]
LOCAL_PROFILE = ROOT / "config" / "profiles" / "localnet.yaml"


@dataclass
class KeeperCli:
    """Runs ``nosana-keeper`` in-process against one chain, with the world's keeper keypair."""

    chain: LocalChain
    keypair: Path
    env: dict[str, str]
    rpc_url: str | None = None  # default: the chain's own URL (else e.g. a hostile proxy's)

    def invoke(self, *args: str, extra_env: dict[str, str] | None = None) -> Result:
        runner = CliRunner()
        command = [*args]
        if args and args[0] in {"run", "check"}:
            url = self.rpc_url or self.chain.url
            command += ["--config", str(LOCAL_PROFILE), "--rpc-url", url]
            command += ["--keypair", str(self.keypair)]
        return runner.invoke(main, command, env={**self.env, **(extra_env or {})})

    def summary(self, result: Result) -> dict[str, object]:
        last = result.stdout.strip().splitlines()[-1]
        parsed: dict[str, object] = json.loads(last)["summary"]
        return parsed


def snapshot(chain: LocalChain) -> dict[Pubkey, Account]:
    """Every account on the chain now (read through the chain's own loop)."""
    accounts = {}
    for key in list(chain.ledger.accounts.keys()):
        account = chain.get_account(key)
        if account is not None:
            accounts[key] = account
    return accounts


@pytest.fixture(autouse=True)
def _no_keeper_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("KEEPER_"):
            monkeypatch.delenv(name)


@pytest.fixture
def demo_chain() -> Iterator[LocalChain]:
    """The demo world with a frozen clock: slots move only when a test says so."""
    with LocalChain.run_in_thread("demo", port=0, auto_advance=False) as chain:
        yield chain


def keeper_env(chain: LocalChain, *, claim: bool = True) -> dict[str, str]:
    world = chain.world
    env = {
        "KEEPER_MARKET_ADMIN": str(world.market_admin),
        "KEEPER_PROGRAM_ID": str(world.program_id),
        "KEEPER_NOS_MINT": str(world.nos_mint),
        "KEEPER_LOG_FORMAT": "json",
        "KEEPER_SEND_RESEND_INTERVAL_SECONDS": "0.2",
    }
    if claim:
        env["KEEPER_CLAIM_ENABLED"] = "true"
        env["KEEPER_CLAIM_NFT"] = str(world.labels["keeper_nft"])
    return env


@pytest.fixture
def cli(demo_chain: LocalChain, tmp_path: Path) -> KeeperCli:
    paths = write_keypairs(demo_chain.world, tmp_path / "keys")
    return KeeperCli(demo_chain, paths["keeper"], keeper_env(demo_chain))
