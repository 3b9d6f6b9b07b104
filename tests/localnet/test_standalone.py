"""The standalone local chain: keypair files, the printed URL, a clean stop on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from solders.keypair import Keypair
from toy_chain import build_toy_world

from keeper.localnet.standalone import write_keypairs


def test_keypairs_are_written_as_solana_cli_json(tmp_path):
    world = build_toy_world()

    paths = write_keypairs(world, tmp_path / "keys")

    keeper_file = paths["keeper"]
    numbers = json.loads(keeper_file.read_text())
    assert len(numbers) == 64
    assert Keypair.from_bytes(bytes(numbers)) == world.keypairs["keeper"]
    assert keeper_file.stat().st_mode & 0o777 == 0o600


def test_the_localnet_command_prints_its_url_and_stops_on_sigterm(tmp_path):
    code = (
        "from pathlib import Path; from keeper.localnet.standalone import main_localnet; "
        f"main_localnet('empty', 0, Path({str(tmp_path)!r}))"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        lines = {}
        for line in process.stdout:
            label, _, value = line.strip().rpartition(" ")
            lines[label] = value
            if line.startswith("localnet: serving"):
                break
        url = lines["localnet: RPC URL"]
        keypair = Path(lines["localnet: keeper keypair"])

        answer = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "getHealth"}).json()
        assert answer["result"] == "ok"
        assert keypair == tmp_path / "keeper.json"
        assert keypair.exists()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        process.stdout.close()
