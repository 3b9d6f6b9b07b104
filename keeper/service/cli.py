"""The ``nosana-keeper`` command line.

Every ``KeeperError`` is caught once here: ``error: ...`` and ``fix: ...``, exit code 2.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import ParamSpec, TypeVar

import click

from keeper import __version__
from keeper.errors import ConfigError, KeeperError
from keeper.service.checks import run_checks
from keeper.service.logs import configure_logging
from keeper.service.metrics import new_metrics
from keeper.service.runner import Keeper, run_once, serve
from keeper.service.settings import Settings, load_settings

P = ParamSpec("P")
R = TypeVar("R")

EXIT_FAILED = 1  # run --once: an action failed or its outcome is unknown, or a pass errored
EXIT_CONFIG = 2  # configuration or start-up: nothing was signed


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
@click.option("--markets", default=None, type=int, help="Scale world: number of markets.")
@click.option(
    "--due-fraction",
    default=None,
    type=float,
    help="Scale world: share of the Done jobs past their market's expiration (0 to 1).",
)
@click.option(
    "--keypair-dir",
    default=Path(".keeper-local"),
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the world's keypairs are written as Solana CLI JSON files.",
)
@click.option("--slot-ms", default=400, show_default=True, type=int, help="Slot duration.")
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="NAME=VALUE",
    help="A fault switch, e.g. rate_limit_every=5 or drop_next=1 (repeatable; see README).",
)
@reports_errors
def localnet(  # noqa: PLR0913, PLR0917 - click passes one argument per option
    world: str,
    port: int,
    jobs: int | None,
    markets: int | None,
    due_fraction: float | None,
    keypair_dir: Path,
    slot_ms: int,
    faults: tuple[str, ...],
) -> None:
    """Run the embedded local chain (JSON-RPC on 127.0.0.1) with a seeded world."""
    # Only this command needs the local chain.
    from keeper.localnet.faults import FaultConfigError, parse_fault_specs  # noqa: PLC0415
    from keeper.localnet.standalone import main_localnet  # noqa: PLC0415

    try:
        config = parse_fault_specs(faults)
    except FaultConfigError as error:
        raise ConfigError(
            str(error), hint="use --fault NAME=VALUE with a switch from the README"
        ) from error
    world_params = {
        name: value
        for name, value in (("jobs", jobs), ("markets", markets), ("due_fraction", due_fraction))
        if value is not None
    }
    main_localnet(
        world, port, keypair_dir, slot_ms=slot_ms, faults=config, world_params=world_params
    )


@main.command()
@click.option("--port", default=0, type=int, help="Local chain port (0: a free one).")
@reports_errors
def demo(port: int) -> None:
    """Start the local chain with its demo world and run the keeper against it."""
    from keeper.service.demo import run_demo  # noqa: PLC0415 - pulls in the local chain

    run_demo(port=port)


def _overrides(rpc_url: str | None, keypair: Path | None) -> dict[str, object]:
    overrides: dict[str, object] = {}
    if rpc_url is not None:
        overrides["rpc"] = {"url": rpc_url}
    if keypair is not None:
        overrides["keypair"] = keypair
    return overrides


def _settings(config: Path | None, rpc_url: str | None, keypair: Path | None) -> Settings:
    import os  # noqa: PLC0415 - read once, here, never at import time

    path = config or (
        Path(os.environ["KEEPER_CONFIG"]) if os.environ.get("KEEPER_CONFIG") else None
    )
    return load_settings(path, _overrides(rpc_url, keypair))


_config_option = click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="YAML settings file (default: $KEEPER_CONFIG).",
)
_rpc_option = click.option("--rpc-url", default=None, help="Overrides rpc.url.")
_keypair_option = click.option(
    "--keypair",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Overrides keypair (a Solana CLI JSON keypair file).",
)


@main.command()
@_config_option
@_rpc_option
@_keypair_option
@click.option("--once", is_flag=True, help="Every enabled task once, then a JSON summary.")
@click.option("--dry-run", is_flag=True, help="Print planned actions as JSON lines; send nothing.")
@reports_errors
def run(
    config: Path | None, rpc_url: str | None, keypair: Path | None, once: bool, dry_run: bool
) -> None:
    """Run the keeper (the service, or one pass with --once)."""
    settings = _settings(config, rpc_url, keypair)
    configure_logging(settings.log.level, settings.log.format)
    keeper = Keeper(settings, new_metrics(), dry_run=dry_run)
    if once:
        summary = asyncio.run(run_once(keeper))
        click.echo(summary.line())
        sys.exit(EXIT_FAILED if summary.failures else 0)
    asyncio.run(serve(keeper))


@main.command()
@_config_option
@_rpc_option
@_keypair_option
@reports_errors
def check(config: Path | None, rpc_url: str | None, keypair: Path | None) -> None:
    """Validate configuration, keypair, RPC, program and role; print a table."""
    settings = _settings(config, rpc_url, keypair)
    configure_logging("WARNING", settings.log.format)
    rows = asyncio.run(run_checks(settings))
    width = max(len(name) for name, _ok, _detail in rows)
    for name, ok, detail in rows:
        click.echo(f"{'ok ' if ok else 'FAIL'} {name:<{width}}  {detail}")
    sys.exit(0 if all(ok for _name, ok, _detail in rows) else EXIT_CONFIG)
