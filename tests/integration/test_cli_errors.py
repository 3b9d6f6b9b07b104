"""Bad configuration and keypairs stop before any signing: one message, the fix, exit 2."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from keeper.service.cli import main
from tests.integration.conftest import KeeperCli, snapshot


def _stops_cleanly(cli: KeeperCli, result_code: int, stderr: str, *, names: str) -> None:
    assert result_code == 2, stderr
    assert "error:" in stderr
    assert "fix:" in stderr
    assert names in stderr


@pytest.mark.parametrize(
    ("content", "names"),
    [
        (None, "does not exist"),
        ("not json", "keypair"),
        ("[1, 2, 3]", "keypair"),
        ("[" + ",".join(["300"] * 64) + "]", "keypair"),
    ],
)
def test_bad_keypair_stops_before_signing(
    cli: KeeperCli, tmp_path: Path, content: str | None, names: str
) -> None:
    before = snapshot(cli.chain)
    path = tmp_path / "bad.json"
    if content is not None:
        path.write_text(content)
    cli.keypair = path
    result = cli.invoke("run", "--once")
    _stops_cleanly(cli, result.exit_code, result.stderr, names=names)
    assert snapshot(cli.chain) == before
    assert content is None or content not in result.stderr  # key material is never echoed


def test_wrong_program_id_names_the_setting(cli: KeeperCli) -> None:
    result = cli.invoke(
        "run",
        "--once",
        extra_env={"KEEPER_PROGRAM_ID": "nosJhNRqr2bc9g1nfGDcXXTXvYUmxD4cVwy2pMWhrYM"},
    )
    _stops_cleanly(cli, result.exit_code, result.stderr, names="KEEPER_PROGRAM_ID")


def test_bad_setting_names_the_setting(cli: KeeperCli) -> None:
    result = cli.invoke("run", "--once", extra_env={"KEEPER_FEES_PERCENTILE": "250"})
    _stops_cleanly(cli, result.exit_code, result.stderr, names="fees.percentile")


def test_unreachable_rpc_stops_with_exit_2(cli: KeeperCli) -> None:
    runner_args = ["run", "--once"]
    result = cli.invoke(*runner_args, extra_env={"KEEPER_RPC_MAX_RETRIES": "0"})
    assert result.exit_code == 0  # reachable: the baseline
    bad = CliRunner().invoke(
        main,
        ["run", "--once", "--rpc-url", "http://127.0.0.1:9", "--keypair", str(cli.keypair)],
        env={**cli.env, "KEEPER_RPC_MAX_RETRIES": "0", "KEEPER_RPC_TIMEOUT_SECONDS": "2"},
    )
    _stops_cleanly(cli, bad.exit_code, bad.stderr, names="unreachable")


def test_claim_enabled_without_nft_is_a_config_error(cli: KeeperCli) -> None:
    env = {k: v for k, v in cli.env.items() if k != "KEEPER_CLAIM_NFT"}
    cli.env = env
    result = cli.invoke("run", "--once")
    _stops_cleanly(cli, result.exit_code, result.stderr, names="NFT")


def test_check_prints_a_table_and_passes_on_a_good_setup(cli: KeeperCli) -> None:
    result = cli.invoke("check")
    assert result.exit_code == 0, result.output
    for row in ("configuration", "keypair", "rpc", "program", "role", "balance", "claim stake"):
        assert row in result.stdout
    assert "market admin" in result.stdout


def test_check_fails_on_a_bad_keypair(cli: KeeperCli, tmp_path: Path) -> None:
    cli.keypair = tmp_path / "missing.json"
    result = cli.invoke("check")
    assert result.exit_code == 2
    assert "FAIL keypair" in result.stdout


def test_not_admin_runs_only_clean(cli: KeeperCli) -> None:
    result = cli.invoke(
        "run",
        "--once",
        "--dry-run",
        extra_env={"KEEPER_MARKET_ADMIN": "AdmMVMMU3po5BP3bVWsF9GgN6NNEfpfxpTDGTzjgb72S"},
    )
    assert result.exit_code == 0, result.output
    actions = {
        line.split('"action": "')[1].split('"')[0] for line in result.stdout.splitlines()[:-1]
    }
    assert actions <= {"clean", "claim"}
    assert "not the market admin" in result.stderr


class _QuietWebServer(http.server.SimpleHTTPRequestHandler):
    """A plain web server: POST answers 501 with an HTML page."""

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def web_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _QuietWebServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_web_server_is_not_a_json_rpc_endpoint_at_once(cli: KeeperCli, web_server: str) -> None:
    before = snapshot(cli.chain)
    result = CliRunner().invoke(
        main,
        ["run", "--once", "--rpc-url", web_server, "--keypair", str(cli.keypair)],
        env={**cli.env, "KEEPER_LOG_LEVEL": "INFO"},
    )
    _stops_cleanly(cli, result.exit_code, result.stderr, names="is not a JSON-RPC endpoint")
    assert "HTTP 501" in result.stderr
    assert "unreachable" not in result.stderr
    assert "rpc retry" not in result.stderr  # said at once, not after retries
    assert snapshot(cli.chain) == before


def test_once_refuses_to_send_beside_an_elected_leader(cli: KeeperCli) -> None:
    before = cli.chain.transactions()
    result = cli.invoke("run", "--once", extra_env={"KEEPER_LEADER_ELECTION_ENABLED": "true"})
    assert result.exit_code == 2, result.output
    assert "error: --once does not take part in leader election" in result.stderr
    assert "fix: add --dry-run" in result.stderr
    assert cli.chain.transactions() == before


def test_election_without_a_way_to_the_api_server_stops_with_the_fix(
    cli: KeeperCli, tmp_path: Path
) -> None:
    before = cli.chain.transactions()
    result = cli.invoke(
        "run",
        extra_env={
            "KEEPER_LEADER_ELECTION_ENABLED": "true",
            "KEEPER_LEADER_ELECTION_KUBECONFIG": str(tmp_path / "absent.kubeconfig"),
            "KEEPER_METRICS_PORT": "0",
        },
    )
    assert result.exit_code == 2, result.output
    assert "error: leader election cannot reach the Kubernetes API" in result.stderr
    assert "fix: " in result.stderr
    assert cli.chain.transactions() == before
