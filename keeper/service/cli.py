"""The ``nosana-keeper`` command line.

Every ``KeeperError`` is caught once here: ``error: ...`` and ``fix: ...``, exit code 2.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import ParamSpec, TypeVar

import click

from keeper import __version__
from keeper.errors import KeeperError

P = ParamSpec("P")
R = TypeVar("R")

EXIT_CONFIG = 2


def reports_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn a KeeperError into one readable message and exit code 2."""

    @wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except KeeperError as error:
            click.echo(f"error: {error}", err=True)
            click.echo(f"fix: {error.hint}", err=True)
            sys.exit(EXIT_CONFIG)

    return wrapper


@click.group()
@click.version_option(__version__, prog_name="nosana-keeper")
def main() -> None:
    """nosana-keeper: keeps the Nosana Jobs program clean on Solana."""


@main.command()
@click.option("--world", default="demo", show_default=True, help="demo, scale or empty.")
@click.option("--port", default=8899, show_default=True, type=int, help="0 picks a free port.")
@click.option("--jobs", default=None, type=int, help="Scale world: number of Done jobs.")
@click.option(
    "--keypair-dir",
    default=Path(".keeper-local"),
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the world's keypairs are written as Solana CLI JSON files.",
)
@click.option("--slot-ms", default=400, show_default=True, type=int, help="Slot duration.")
@reports_errors
def localnet(world: str, port: int, jobs: int | None, keypair_dir: Path, slot_ms: int) -> None:
    """Run the embedded local chain (JSON-RPC on 127.0.0.1) with a seeded world."""
    from keeper.localnet.chain import main_localnet  # noqa: PLC0415 - only this command needs it

    params = {} if jobs is None else {"jobs": jobs}
    main_localnet(world, port, keypair_dir, slot_ms=slot_ms, **params)


@main.command()
@click.option("--port", default=0, type=int, help="Local chain port (0: a free one).")
@reports_errors
def demo(port: int) -> None:
    """Start the local chain with its demo world and run the keeper against it."""
    from keeper.service.demo import run_demo  # noqa: PLC0415 - pulls in the local chain

    run_demo(port=port)
