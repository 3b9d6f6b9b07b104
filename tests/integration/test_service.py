"""The service: scheduled passes, metrics, /healthz, /readyz, graceful SIGTERM."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from solders.keypair import Keypair

from tests.integration.conftest import LOCAL_PROFILE, KeeperCli
from tests.integration.probe import free_port, get, wait_for


def _service_command(cli: KeeperCli) -> list[str]:
    return [
        sys.executable,
        "-m",
        "keeper",
        "run",
        "--config",
        str(LOCAL_PROFILE),
        "--rpc-url",
        cli.chain.url,
        "--keypair",
        str(cli.keypair),
    ]


def _service_env(cli: KeeperCli, port: int, **settings: str) -> dict[str, str]:
    """The process environment of a keeper service: the test's settings, no stray KEEPER_*."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("KEEPER_")},
        **cli.env,
        "KEEPER_METRICS_PORT": str(port),
        "KEEPER_METRICS_HOST": "127.0.0.1",
        **settings,
    }


def test_service_passes_reports_and_stops_gracefully(cli: KeeperCli, tmp_path: Path) -> None:
    port = free_port()
    env = _service_env(
        cli,
        port,
        KEEPER_CLEAN_INTERVAL_SECONDS="2",
        KEEPER_QUIT_INTERVAL_SECONDS="2",
        KEEPER_CLAIM_INTERVAL_SECONDS="2",
        KEEPER_SCHEDULE_JITTER_SECONDS="0",
    )
    command = _service_command(cli)
    log_path = tmp_path / "keeper.log"
    log_file = log_path.open("wb")
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log_file)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: get(f"{base}/healthz")[0] == 200)
        wait_for(
            lambda: (
                'nosana_keeper_last_success_timestamp_seconds{task="finished_jobs"}'
                in get(f"{base}/metrics")[1]
            )
        )
        metrics = get(f"{base}/metrics")[1]
        assert not [form for form in secret_forms(cli.keypair) if form in metrics]
        assert (
            'nosana_keeper_actions_confirmed_total{action="clean",reason="job_expired"}' in metrics
        )
        assert "nosana_keeper_balance_lamports" in metrics
        status, body = get(f"{base}/readyz")
        assert status == 200, body
        assert json.loads(body)["ready"] is True
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log_file.close()
    stderr = log_path.read_text()
    assert "shutting down" in stderr
    assert str(Keypair.from_json(cli.keypair.read_text()).pubkey()) in stderr  # it logs keys
    assert not [form for form in secret_forms(cli.keypair) if form in stderr]


def secret_forms(path: Path) -> set[str]:
    """The keypair's secret in every encoding a log line could carry: the 64 bytes and the
    32-byte seed as base58, hex and base64, and the file's JSON array."""
    keypair = Keypair.from_json(path.read_text())
    whole, seed = bytes(keypair), bytes(keypair)[:32]
    forms = {str(keypair), path.read_text().strip(), json.dumps(list(whole))}
    for part in (whole, seed):
        forms |= {part.hex(), base64.b64encode(part).decode()}
    return forms


def test_readyz_names_what_fails_when_balance_is_below_the_floor(
    cli: KeeperCli, tmp_path: Path
) -> None:
    port = free_port()
    env = _service_env(cli, port, KEEPER_FEES_BALANCE_FLOOR_LAMPORTS=str(10**18))
    command = _service_command(cli)
    before = cli.chain.get_account(cli.chain.world.keypairs["keeper"].pubkey())
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        # 503 "starting" comes first (the port is bound before the start-up checks).
        wait_for(lambda: "balance" in get(f"http://127.0.0.1:{port}/readyz")[1])
        status, body = get(f"http://127.0.0.1:{port}/readyz")
        assert status == 503
        assert "balance" in json.loads(body)["failing"]
        wait_for(
            lambda: (
                'nosana_keeper_sending_paused{cause="balance_floor"} 1.0'
                in get(f"http://127.0.0.1:{port}/metrics")[1]
            )
        )
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    after = cli.chain.get_account(cli.chain.world.keypairs["keeper"].pubkey())
    assert before is not None
    assert after is not None
    assert after.lamports == before.lamports  # paused: not a lamport spent


def test_sigterm_mid_pass_exits_cleanly_within_the_deadline(cli: KeeperCli, tmp_path: Path) -> None:
    port = free_port()
    env = _service_env(cli, port, KEEPER_SEND_SHUTDOWN_DEADLINE_SECONDS="5")
    cli.chain.set_faults(latency_ms=150)  # every request slow: a pass takes seconds
    command = _service_command(cli)
    log_path = tmp_path / "keeper.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log_file)
        try:
            wait_for(lambda: b"pass planned" in log_path.read_bytes(), limit=60)
            process.send_signal(signal.SIGTERM)  # passes are still sending
            assert process.wait(timeout=30) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert "shutting down" in log_path.read_text()
