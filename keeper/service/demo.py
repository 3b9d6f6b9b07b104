"""``nosana-keeper demo``: the local chain with its demo world, and the keeper resolving it.

Starts the embedded chain in-process, writes the world's keypairs, runs every task once
for real (signing, sending, confirming) while serving metrics, then prints what it found,
what it sent, the SOL reclaimed per action, the fees paid and the metrics URL.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections import Counter
from pathlib import Path

import click

from keeper.localnet.chain import LocalChain
from keeper.localnet.standalone import write_keypairs
from keeper.localnet.worlds import load_world
from keeper.service.execution import PassReport
from keeper.service.health import build_app, start_http
from keeper.service.logs import configure_logging
from keeper.service.metrics import new_metrics
from keeper.service.runner import Keeper, Summary
from keeper.service.settings import load_settings

LAMPORTS_PER_SOL = 1_000_000_000
CONFIG = Path(__file__).resolve().parents[2] / "config" / "profiles" / "localnet.yaml"


def run_demo(port: int = 0) -> None:
    asyncio.run(_demo(port))


async def _demo(port: int) -> None:
    configure_logging("ERROR", "console")
    click.secho("nosana-keeper demo", bold=True)
    click.echo("starting the embedded local chain with the demo world …")
    world = await asyncio.to_thread(load_world, "demo")
    # A frozen clock keeps the demo exact: each labelled case resolves as the world expects.
    async with LocalChain.start(world, port=port, auto_advance=False) as chain:
        keys = write_keypairs(world, Path(tempfile.mkdtemp(prefix="nosana-keeper-demo-")))
        expected = Counter(value.split(":")[0] for value in world.expectations.values())
        click.echo(
            f"  RPC {chain.url} — {len(world.accounts)} accounts, chain clock "
            f"{world.unix_timestamp} (independent of this machine's clock)"
        )
        click.echo(
            "  the world expects: " + ", ".join(f"{n} {k}" for k, n in sorted(expected.items()))
        )
        settings = load_settings(
            CONFIG if CONFIG.is_file() else None,
            {
                "rpc": {"url": chain.url},
                "keypair": keys["keeper"],
                "program_id": str(world.program_id),
                "market_admin": str(world.market_admin),
                "nos_mint": str(world.nos_mint),
                "claim": {"enabled": True, "nft": str(world.labels["keeper_nft"])},
                "metrics": {"host": "127.0.0.1", "port": 0},
            },
        )
        metrics = new_metrics()
        keeper = Keeper(settings, metrics)
        await keeper.start()
        http, metrics_port = await start_http(
            build_app(metrics, keeper.readiness()), "127.0.0.1", 0
        )
        try:
            reports = []
            for task in keeper.enabled_tasks():
                click.echo(f"  ⋯ {task}: scanning and deciding …", nl=False)
                report = await keeper.run_task(task)
                reports.append(report)
                status = (
                    "error: " + "; ".join(report.errors)
                    if report.errors
                    else (
                        f"{report.planned} planned, {report.confirmed} confirmed, "
                        f"{report.failed} failed, {sum(report.skipped.values())} left alone"
                    )
                )
                click.echo(f"\r  ✓ {task}: {status}")
            _print_summary(reports, metrics_port)
        finally:
            await keeper.close()
            await http.cleanup()


def _print_summary(reports: list[PassReport], metrics_port: int) -> None:
    summary = Summary.of(reports)
    click.secho("\nsummary", bold=True)
    for report in reports:
        reclaimed = report.reclaimed_lamports / LAMPORTS_PER_SOL
        click.echo(
            f"  {report.task:14} sent {report.sent:>3}  confirmed {report.confirmed:>3}  "
            f"reclaimed {reclaimed:.6f} SOL"
        )
        if report.skipped:
            alone = ", ".join(f"{k} {v}" for k, v in sorted(report.skipped.items()))
            click.echo(f"  {'':14} left alone: {alone}")
    click.echo(
        f"  total reclaimed {summary.reclaimed_lamports / LAMPORTS_PER_SOL:.6f} SOL, "
        f"fees paid {summary.fees_lamports / LAMPORTS_PER_SOL:.6f} SOL, orphans {summary.orphans}"
    )
    click.echo(f"  metrics were served at http://127.0.0.1:{metrics_port}/metrics")
    click.echo(summary.line())
