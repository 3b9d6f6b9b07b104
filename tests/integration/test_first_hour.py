"""An operator's first hour (issue 12): every start-up problem is a sentence and a fix, and
what the keeper reports can be checked against the chain. Each test drives the real CLI."""

from __future__ import annotations

import gc
import json
import socket
import subprocess
import sys
import threading
import warnings
from collections import Counter
from pathlib import Path
from typing import IO

import httpx
from click.testing import CliRunner

from keeper.service.cli import main
from tests.integration.conftest import LOCAL_PROFILE, ROOT, KeeperCli, snapshot

SYSTEM_PROGRAM = "11111111111111111111111111111111"


def _stopped(result_code: int, stderr: str, *names: str) -> None:
    assert result_code == 2, stderr
    assert "error:" in stderr
    assert "fix:" in stderr
    assert "Traceback" not in stderr
    for name in names:
        assert name in stderr, stderr


# --- 1. a dry run's readiness does not depend on a balance -----------------------------------


def test_dry_run_without_keypair_is_ready(cli: KeeperCli, tmp_path: Path) -> None:
    """The chart's default install: `run --dry-run`, no keypair, a throwaway key of 0 SOL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**cli.env, "KEEPER_METRICS_HOST": "127.0.0.1", "KEEPER_METRICS_PORT": str(port)}
    command = [sys.executable, "-m", "keeper", "run", "--dry-run", "--config", str(LOCAL_PROFILE)]
    command += ["--rpc-url", cli.chain.url, "--keypair", str(tmp_path / "none.json")]
    log = tmp_path / "keeper.log"
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=out, env=env)
        try:
            answer = _poll_ready(f"http://127.0.0.1:{port}/readyz", process)
        finally:
            process.terminate()
            process.wait(timeout=30)
    assert answer is not None, log.read_text()[-2000:]
    assert answer.status_code == 200, answer.text
    assert "balance" not in answer.json()["checks"]


def _poll_ready(url: str, process: subprocess.Popen[bytes]) -> httpx.Response | None:
    last = None
    for _attempt in range(120):
        if process.poll() is not None:
            return last
        try:
            last = httpx.get(url, timeout=5)
        except httpx.HTTPError:
            last = None
        if last is not None and last.json().get("checks") != ["starting"]:
            return last
        subprocess.run(["sleep", "0.25"], check=True)
    return last


# --- 2. OS-level failures at start-up ------------------------------------------------------


def test_metrics_port_in_use_stops_before_start(cli: KeeperCli) -> None:
    before = snapshot(cli.chain)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli.invoke(
            "run",
            extra_env={"KEEPER_METRICS_HOST": "127.0.0.1", "KEEPER_METRICS_PORT": str(port)},
        )
    _stopped(result.exit_code, result.stderr, f"127.0.0.1:{port}", "KEEPER_METRICS_PORT")
    assert "keeper started" not in result.stderr
    assert snapshot(cli.chain) == before


def test_rpc_url_with_an_impossible_port_is_a_setting_error(cli: KeeperCli) -> None:
    result = CliRunner().invoke(
        main,
        ["run", "--once", "--rpc-url", "http://127.0.0.1:99999", "--keypair", str(cli.keypair)],
        env=cli.env,
    )
    _stopped(result.exit_code, result.stderr, "rpc.url", "port")


# --- 3. check awaits what it starts ------------------------------------------------------------


def test_check_with_a_failing_rpc_leaves_no_coroutine_unawaited(cli: KeeperCli) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = CliRunner().invoke(
            main,
            [
                *("check", "--config", str(LOCAL_PROFILE), "--rpc-url", "http://127.0.0.1:9"),
                *("--keypair", str(cli.keypair)),
            ],
            env={**cli.env, "KEEPER_RPC_MAX_RETRIES": "0"},
        )
        gc.collect()
    assert result.exit_code == 2, result.output
    assert "FAIL rpc" in result.stdout
    assert not [w for w in caught if "never awaited" in str(w.message)]


# --- 4. a deployed program that is not the Jobs program --------------------------------------


def test_system_program_as_program_id_fails_check_and_start(cli: KeeperCli) -> None:
    wrong = {"KEEPER_PROGRAM_ID": SYSTEM_PROGRAM}
    checked = cli.invoke("check", extra_env=wrong)
    assert checked.exit_code == 2, checked.output
    assert "FAIL program" in checked.stdout
    assert "no Nosana Jobs MarketAccount" in checked.stdout
    ran = cli.invoke("run", "--once", extra_env=wrong)
    _stopped(ran.exit_code, ran.stderr, "no Nosana Jobs MarketAccount", "KEEPER_PROGRAM_ID")


def test_check_counts_the_markets_of_the_right_program(cli: KeeperCli) -> None:
    result = cli.invoke("check")
    assert result.exit_code == 0, result.output
    markets = sum(
        1 for a in cli.chain.world.accounts.values() if a.data[:8].hex() == "c94ebbe1f0c6c9fb"
    )
    assert f"({markets} markets)" in result.stdout


# --- 5. the demo can be checked against the world ---------------------------------------------


def test_demo_counts_per_action_and_reason_and_matches_the_world() -> None:
    from keeper.localnet.worlds import load_world  # noqa: PLC0415

    expected = Counter(load_world("demo").expectations.values())
    result = CliRunner().invoke(main, ["demo"])
    assert result.exit_code == 0, result.output
    assert "\r" not in result.output  # written to a file, no carriage returns
    assert "metrics were served" not in result.output  # no URL of a closed server
    assert "matches the world's expectation" in result.stdout
    summary = json.loads(result.stdout.strip().splitlines()[-1])["summary"]
    found = Counter(summary["confirmed_actions"]) + Counter(
        {f"leave:{reason}": n for reason, n in summary["left_alone"].items()}
    )
    assert found == expected
    assert summary["left_alone"]["queued"] == expected["leave:queued"]
    assert summary["left_alone"]["undecodable"] == expected["leave:undecodable"]


def test_console_logs_show_reason_values_not_enum_reprs(cli: KeeperCli) -> None:
    result = cli.invoke("run", "--once", "--dry-run", extra_env={"KEEPER_LOG_FORMAT": "console"})
    assert result.exit_code == 0, result.output
    assert "run_not_timed_out" in result.stderr
    assert "<Reason." not in result.stderr


# --- 7. keypair files others can read ----------------------------------------------------------


def test_world_readable_keypair_is_warned_about_with_the_chmod(cli: KeeperCli) -> None:
    cli.keypair.chmod(0o644)
    checked = cli.invoke("check")
    assert checked.exit_code == 0, checked.output
    assert "warn keypair mode" in checked.stdout
    assert f"chmod 600 {cli.keypair}" in checked.stdout
    ran = cli.invoke("run", "--once", "--dry-run")
    assert ran.exit_code == 0, ran.output
    assert "accessible by other users (mode 0644)" in ran.stderr
    assert f"chmod 600 {cli.keypair}" in ran.stderr


def test_group_readable_secret_mount_stays_quiet(cli: KeeperCli) -> None:
    cli.keypair.chmod(0o440)  # the chart's Secret mount (fsGroup)
    checked = cli.invoke("check")
    assert checked.exit_code == 0, checked.output
    assert "keypair mode" not in checked.stdout
    ran = cli.invoke("run", "--once", "--dry-run")
    assert "accessible by other users" not in ran.stderr


# --- 8. smaller ones --------------------------------------------------------------------------


def test_readme_dry_run_with_the_mainnet_profile_needs_no_keypair(cli: KeeperCli) -> None:
    """The profile names /keys/keeper.json, which does not exist here: a dry run needs none."""
    profile = ROOT / "config" / "profiles" / "mainnet.yaml"
    result = CliRunner().invoke(
        main,
        ["run", "--config", str(profile), "--once", "--dry-run", "--rpc-url", cli.chain.url],
        env=cli.env,  # this chain's program ids (env overrides the profile)
    )
    assert result.exit_code == 0, result.output
    assert "throwaway key" in result.stderr


def test_fix_hint_names_the_flag_that_was_used(cli: KeeperCli, tmp_path: Path) -> None:
    cli.keypair = tmp_path / "missing.json"
    result = cli.invoke("run", "--once")
    _stopped(result.exit_code, result.stderr, "--keypair")
    fix = next(line for line in result.stderr.splitlines() if line.startswith("fix:"))
    assert "KEEPER_KEYPAIR" not in fix


def test_top_level_yaml_list_is_a_clear_message(tmp_path: Path) -> None:
    config = tmp_path / "keeper.yaml"
    config.write_text("- rpc\n- url\n")
    result = CliRunner().invoke(main, ["check", "--config", str(config)])
    _stopped(result.exit_code, result.stderr, "a list at the top level")
    assert "dictionary update sequence" not in result.stderr


def test_dry_run_quit_admin_lines_carry_market(cli: KeeperCli) -> None:
    result = cli.invoke("run", "--once", "--dry-run")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()[:-1]]
    keys = {"action", "account", "reason", "task", "payer", "lamports", "market"}
    assert all(keys <= line.keys() for line in lines)
    quits = [line for line in lines if line["action"] == "quitAdmin"]
    assert quits
    open_market = str(cli.chain.world.labels["market_open"])
    by_reason = {line["reason"]: line for line in quits}
    assert by_reason["run_timed_out"]["market"] == open_market
    assert by_reason["run_job_missing"]["market"] is None  # its job, and so its market, is gone


def test_check_shows_the_claim_row_when_claims_are_misconfigured(cli: KeeperCli) -> None:
    cli.env = {k: v for k, v in cli.env.items() if k != "KEEPER_CLAIM_NFT"}
    result = cli.invoke("check")
    assert result.exit_code == 2, result.output
    assert "ok   keypair" in result.stdout
    claim = next(line for line in result.stdout.splitlines() if " claim " in f" {line} ")
    assert claim.startswith("FAIL")
    assert "NFT" in claim


def test_localnet_prints_the_commands_to_run_next(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "keeper", "localnet", "--port", "0"]
    command += ["--keypair-dir", str(tmp_path / "keys")]
    lines: list[str] = []
    printed = threading.Event()

    def read(stream: IO[str]) -> None:
        for line in stream:
            lines.append(line)
            if "--once --dry-run" in line:
                printed.set()

    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        reader = threading.Thread(target=read, args=(process.stdout,), daemon=True)
        reader.start()
        try:
            printed.wait(timeout=60)  # a deadline for a chain that never says it
        finally:
            process.terminate()
        reader.join(timeout=30)
    url = next(line.split()[-1] for line in lines if "RPC URL" in line)
    runs = [line.strip() for line in lines if line.strip().startswith("nosana-keeper run")]
    assert runs, "".join(lines)
    assert "--config config/profiles/localnet.yaml" in runs[0]
    assert f"--rpc-url {url}" in runs[0]
    assert f"--keypair {tmp_path / 'keys' / 'keeper.json'}" in runs[0]


# --- status --------------------------------------------------------------------------------------


def test_status_shows_what_waits_per_task_and_reason(cli: KeeperCli) -> None:
    before = snapshot(cli.chain)
    result = cli.invoke("status", "--json", *_chain_flags(cli))
    assert result.exit_code == 0, result.output
    status = json.loads(result.stdout)["status"]
    waiting = Counter({f"{r['action']}:{r['reason']}": r["accounts"] for r in status["waiting"]})
    expected = Counter(
        v for v in cli.chain.world.expectations.values() if not v.startswith("leave")
    )
    assert waiting == expected
    assert status["admin"] is True
    assert all(row["may_act"] for row in status["waiting"])
    closes = [r for r in status["waiting"] if r["action"] != "claim"]
    assert all(row["lamports"] > 0 for row in closes)
    assert snapshot(cli.chain) == before  # one read, nothing signed


def test_status_without_admin_says_who_may_act(cli: KeeperCli) -> None:
    result = cli.invoke(
        "status", *_chain_flags(cli), extra_env={"KEEPER_MARKET_ADMIN": SYSTEM_PROGRAM}
    )
    assert result.exit_code == 0, result.output
    quit_row = next(line for line in result.stdout.splitlines() if "quitAdmin" in line)
    assert "may not: not the market admin" in quit_row
    clean_row = next(line for line in result.stdout.splitlines() if " clean " in line)
    assert clean_row.endswith("may act")


def _chain_flags(cli: KeeperCli) -> list[str]:
    return [
        "--config",
        str(LOCAL_PROFILE),
        "--rpc-url",
        cli.chain.url,
        "--keypair",
        str(cli.keypair),
    ]
