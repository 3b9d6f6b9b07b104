"""The chart's default install becomes ready: `helm template` with default values, then the
keeper run exactly as the Deployment runs it (its args, the ConfigMap's keeper.yaml, no
keypair: a dry run with a throwaway key) against the local chain, until /readyz answers 200.

Only what a cluster would supply differently is overridden, through the environment as the
chart's own extraEnv would: the RPC URL (the local chain), the cluster's program ids (the
local chain runs the devnet build), the metrics address (a free loopback port) and leader
election (its lease lives in the Kubernetes API, which a test machine does not have)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from deploy_tools import one, render, tool

from keeper.localnet.chain import LocalChain

DEADLINE_SECONDS = 60.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def chain() -> Iterator[LocalChain]:
    with LocalChain.run_in_thread("demo", port=0, auto_advance=False) as running:
        yield running


def _rendered(tmp_path: Path) -> tuple[list[str], Path]:
    manifests = render(tool("helm"))
    config_map = one(manifests, "ConfigMap")
    deployment = one(manifests, "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    config = tmp_path / "keeper.yaml"
    config.write_text(config_map["data"]["keeper.yaml"])
    args = [str(config) if arg.endswith("keeper.yaml") else arg for arg in container["args"]]
    assert "--dry-run" in args  # the default install: no keypair Secret
    assert not any(env["name"] == "KEEPER_KEYPAIR" for env in container.get("env", []))
    return args, config


def _readyz(url: str, process: subprocess.Popen[bytes], log: Path) -> httpx.Response:
    deadline = time.monotonic() + DEADLINE_SECONDS
    last: httpx.Response | None = None
    while time.monotonic() < deadline and process.poll() is None:
        try:
            last = httpx.get(url, timeout=5)
        except httpx.HTTPError:
            last = None
        if last is not None and last.status_code == 200:
            return last
        time.sleep(0.5)
    pytest.fail(
        f"/readyz never answered 200 (last: {last and last.text!r}); "
        f"keeper output:\n{log.read_text()[-3000:]}"
    )


def test_default_install_becomes_ready(chain: LocalChain, tmp_path: Path) -> None:
    args, _config = _rendered(tmp_path)
    world, port = chain.world, _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEPER_")}
    env |= {
        "KEEPER_RPC_URL": chain.url,
        "KEEPER_PROGRAM_ID": str(world.program_id),
        "KEEPER_MARKET_ADMIN": str(world.market_admin),
        "KEEPER_NOS_MINT": str(world.nos_mint),
        "KEEPER_METRICS_HOST": "127.0.0.1",
        "KEEPER_METRICS_PORT": str(port),
        # No Kubernetes API here to hold the lease: this keeper is the only one.
        "KEEPER_LEADER_ELECTION_ENABLED": "false",
    }
    log = tmp_path / "keeper.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "keeper", *args], stdout=output, stderr=output, env=env
        )
        try:
            ready = _readyz(f"http://127.0.0.1:{port}/readyz", process, log)
        finally:
            process.terminate()
            process.wait(timeout=30)
    body = ready.json()
    assert body["ready"] is True
    assert "balance" not in body["checks"]  # a dry run spends nothing
