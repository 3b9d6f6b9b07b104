"""The local chain as a standalone command (``nosana-keeper localnet``).

``main_localnet`` loads a world, writes its keypairs as Solana CLI JSON files, prints
the RPC URL and the keeper keypair path, then serves until SIGINT or SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from typing import TYPE_CHECKING, Final

from keeper.localnet.chain import GenesisWorld, LocalChain, load_world

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path

    from keeper.localnet.faults import FaultConfig

KEEPER_KEYPAIR_NAME: Final = "keeper"
LOCAL_PROFILE: Final = "config/profiles/localnet.yaml"  # relative: run from the repository


def write_keypairs(world: GenesisWorld, keypair_dir: Path) -> dict[str, Path]:
    """Each keypair of ``world`` as ``<dir>/<name>.json`` (64 numbers, mode 0600)."""
    keypair_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, keypair in world.keypairs.items():
        path = keypair_dir / f"{name}.json"
        path.touch(mode=0o600, exist_ok=True)
        path.chmod(0o600)
        path.write_text(json.dumps(list(bytes(keypair))))
        paths[name] = path
    return paths


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def serve_forever(
    world: GenesisWorld | str,
    port: int,
    *,
    host: str = "127.0.0.1",
    slot_ms: int = 400,
    faults: FaultConfig | None = None,
    on_ready: Callable[[LocalChain], None] | None = None,
    **world_params: object,
) -> None:
    """Serve until SIGINT/SIGTERM; ``on_ready`` runs once the URL is known."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    loaded = load_world(world, **world_params)
    try:
        async with LocalChain.start(
            loaded, port=port, host=host, slot_ms=slot_ms, faults=faults
        ) as chain:
            if on_ready is not None:
                on_ready(chain)
            await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def next_commands(url: str, keypair: Path | None) -> list[str]:
    """What to run next, in another terminal: the keeper with the profile this chain needs
    (its program id, market admin and NOS mint), pointed at this chain and keypair."""
    flags = f"--config {LOCAL_PROFILE} --rpc-url {url}"
    if keypair is not None:
        flags += f" --keypair {keypair}"
    return [
        "localnet: next, in another terminal:",
        f"  nosana-keeper check {flags}",
        f"  nosana-keeper status {flags}",
        f"  nosana-keeper run {flags} --once --dry-run",
    ]


def main_localnet(
    world: str,
    port: int,
    keypair_dir: Path,
    *,
    faults: FaultConfig | None = None,
    host: str = "127.0.0.1",
    slot_ms: int = 400,
    world_params: Mapping[str, object] | None = None,
) -> None:
    """The ``nosana-keeper localnet`` command: print the URL and keypair path, then serve.

    ``world_params`` go to the world's builder (e.g. ``{"jobs": 1000, "markets": 50}``).
    """
    loaded = load_world(world, **(world_params or {}))
    paths = write_keypairs(loaded, keypair_dir)

    def announce(chain: LocalChain) -> None:
        _say(f"localnet: world {loaded.name}, {len(chain.ledger.accounts)} accounts")
        _say(f"localnet: jobs program {loaded.program_id}")
        _say(f"localnet: RPC URL {chain.url}")
        _say(f"localnet: websocket URL {chain.ws_url}")
        if KEEPER_KEYPAIR_NAME in paths:
            _say(f"localnet: keeper keypair {paths[KEEPER_KEYPAIR_NAME]}")
        _say("localnet: serving until Ctrl-C (SIGINT) or SIGTERM")
        for line in next_commands(chain.url, paths.get(KEEPER_KEYPAIR_NAME)):
            _say(line)

    asyncio.run(
        serve_forever(loaded, port, host=host, slot_ms=slot_ms, faults=faults, on_ready=announce)
    )
