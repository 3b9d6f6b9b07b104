"""The ``nosana-keeper`` command line.

Every ``KeeperError`` is caught once here: ``error: ...`` and ``fix: ...``, exit code 2.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Mapping
from functools import wraps
from pathlib import Path
from typing import NoReturn, ParamSpec, TypeVar

import click

from keeper import __version__
from keeper.errors import ConfigError, KeeperError
from keeper.service.checks import run_checks
from keeper.service.logs import configure_logging
from keeper.service.metrics import new_metrics
from keeper.service.progress import terminal_progress
from keeper.service.runner import Keeper, run_once, serve
from keeper.service.settings import Settings, load_settings

P = ParamSpec("P")
R = TypeVar("R")

EXIT_FAILED = 1  # run --once: an action failed or its outcome is unknown, or a pass errored
EXIT_CONFIG = 2  # configuration or start-up: nothing was signed


# A flag given on the command line wins over its environment variable: a fix names the flag.
_FLAGS = {"keypair": ("KEEPER_KEYPAIR", "--keypair"), "rpc_url": ("KEEPER_RPC_URL", "--rpc-url")}


def _name_flags(hint: str, given: Mapping[str, object]) -> str:
    for argument, (variable, flag) in _FLAGS.items():
        if given.get(argument) is not None:
            hint = hint.replace(variable, flag)
    return hint


def _os_failure(error: BaseException) -> OSError | OverflowError | None:
    """The operating-system failure in ``error``, also inside an exception group."""
    if isinstance(error, OSError | OverflowError):
        return error
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            if (found := _os_failure(inner)) is not None:
                return found
    return None


def _stop(message: str, hint: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    click.echo(f"fix: {hint}", err=True)
    sys.exit(EXIT_CONFIG)


def reports_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn a KeeperError, or an OS-level failure, into one readable message and exit 2."""

    @wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except KeeperError as error:
            _stop(str(error), _name_flags(error.hint, kwargs))
        except (OSError, OverflowError, BaseExceptionGroup) as error:
            failure = _os_failure(error)
            if failure is None:
                raise
            _stop(
                f"{type(failure).__name__}: {failure}",
                "the operating system refused what the keeper asked for: check the "
                "address, port, path or permission named above (`nosana-keeper check` "
                "validates a configuration)",
            )

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
    keeper = Keeper(settings, new_metrics(), dry_run=dry_run, scan_observer=terminal_progress())
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
    width = max(len(row.name) for row in rows)
    given = {"keypair": keypair, "rpc_url": rpc_url}
    for row in rows:
        click.echo(f"{row.status:<4} {row.name:<{width}}  {_name_flags(row.detail, given)}")
    sys.exit(0 if all(row.ok for row in rows) else EXIT_CONFIG)


@main.command()
@_config_option
@_rpc_option
@_keypair_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of the table.")
@reports_errors
def status(config: Path | None, rpc_url: str | None, keypair: Path | None, as_json: bool) -> None:
    """What waits on chain now, per task and reason, and what this keeper may act on."""
    from keeper.service.status import chain_status  # noqa: PLC0415 - only this command

    settings = _settings(config, rpc_url, keypair)
    configure_logging("WARNING", settings.log.format)
    found = asyncio.run(chain_status(settings, terminal_progress()))
    if as_json:
        click.echo(found.as_json())
    else:
        click.echo("\n".join(found.table()))
