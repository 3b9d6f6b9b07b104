"""``nosana-keeper demo``: the local chain with its demo world, and the keeper resolving it.

Starts the embedded chain in-process, writes the world's keypairs, runs every task once
for real (signing, sending, confirming), then prints what it did per action and reason,
what it left alone per reason, the SOL reclaimed, the fees paid, and whether all of it
matches the outcome the world's labels expect.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Final

import click

from keeper.localnet.chain import LocalChain
from keeper.localnet.standalone import write_keypairs
from keeper.localnet.worlds import load_world
from keeper.service.execution import PassReport
from keeper.service.live import LiveMode
from keeper.service.logs import configure_logging
from keeper.service.metrics import new_metrics
from keeper.service.runner import Keeper, Summary
from keeper.service.settings import load_settings
from keeper.tasks.plan import Task

LAMPORTS_PER_SOL = 1_000_000_000
_SLOT_PAUSE_S: Final = 0.05  # the demo drives its chain's slots: fast, and the same every run
_LIVE_START_CHECKS: Final = 200  # 10 s
CLEAR_LINE = "\r\033[K"  # back to the line's start and erase it (terminals only)
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
        expected = Counter(world.expectations.values())
        click.echo(
            f"  RPC {chain.url} — {len(world.accounts)} accounts, chain clock "
            f"{world.unix_timestamp} (independent of this machine's clock)"
        )
        click.echo(f"  the world expects: {_in_words(expected)}")
        settings = load_settings(
            CONFIG if CONFIG.is_file() else None,
            {
                "rpc": {"url": chain.url},
                "keypair": keys["keeper"],
                "program_id": str(world.program_id),
                "market_admin": str(world.market_admin),
                "nos_mint": str(world.nos_mint),
                "claim": {"enabled": True, "nft": str(world.labels["keeper_nft"])},
            },
        )
        keeper = Keeper(settings, new_metrics())
        await keeper.start()
        try:
            reports = [await _run_task(keeper, task) for task in keeper.enabled_tasks()]
            await _live_demo(keeper, chain)
        finally:
            await keeper.close()
        _print_summary(reports, expected)


def _scans(chain: LocalChain) -> int:
    return int(chain.node.stats.calls.get("getProgramAccounts", 0))


async def _until(predicate: Callable[[], bool], chain: LocalChain, slots: int) -> bool:
    """Advance the chain a slot at a time (chain time with it) until ``predicate`` holds."""
    for _ in range(slots):
        if predicate():
            return True
        chain.ledger.clock.advance(1)
        await asyncio.sleep(_SLOT_PAUSE_S)
    return predicate()


async def _live_demo(keeper: Keeper, chain: LocalChain) -> None:
    """Live mode: the keeper follows the websocket; the world finishes a job and the keeper
    cleans it as it expires (after the older jobs the start read filed, due first), with
    no getProgramAccounts in between."""
    click.echo("  ⋯ live mode: subscribing to the program, the clock and each market …")
    live = LiveMode(keeper)
    keeper.live = live
    following = asyncio.create_task(live.run())
    try:
        # The subscription's resync is a full read at the same frozen chain time: it
        # finds nothing the passes above left, so the demo's outcome stays exact.
        if not await _wait(live):
            click.echo("  ✗ live mode: the feed did not come up")
            return
        lifecycle = chain.node.lifecycle
        assert lifecycle is not None
        market = chain.world.labels["market_open"]
        job = lifecycle.post_job(market=market)
        lifecycle.start_job(job)
        ended = lifecycle.finish_job(job)
        expiration = lifecycle.market_expiration(market)
        due = ended.unix_timestamp + expiration + 1
        click.echo(
            f"  ✓ live mode: job {job} finished at chain time {ended.unix_timestamp}; "
            f"clean is due at {due} (its market keeps jobs {expiration} s)"
        )
        # The start resync filed the world's other not-yet-due jobs: wait for this one.
        filed = lambda: live.book.due_at(Task.FINISHED_JOBS, job) is not None  # noqa: E731
        await _until(filed, chain, slots=20)
        others = live.book.sizes()[Task.FINISHED_JOBS] - 1
        click.echo(
            f"  ✓ live mode: the start read filed {others} other not-yet-due cleans; they fall "
            "due first, at the same jump, and go in the batch before"
        )
        scans = _scans(chain)
        # Chain time jumps to just before the expiry, then runs a slot at a time.
        chain.ledger.clock.set_unix_timestamp(due - 2)
        cleaned = await _until(lambda: chain.ledger.get(job) is None, chain, slots=100)
        now = chain.ledger.clock.unix_timestamp
        if cleaned:
            click.echo(
                f"  ✓ live mode: cleaned at chain time {now} ({now - due} s after it fell due), "
                f"{_scans(chain) - scans} getProgramAccounts calls in between"
            )
        else:
            click.echo("  ✗ live mode: the job was not cleaned")
    finally:
        following.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await following
        await live.close()
        keeper.live = None


async def _wait(live: LiveMode) -> bool:
    for _ in range(_LIVE_START_CHECKS):  # the subscription and its resync
        if live.following:
            return True
        await asyncio.sleep(_SLOT_PAUSE_S)
    return live.following


async def _run_task(keeper: Keeper, task: Task) -> PassReport:
    # The "working" line is rewritten in place on a terminal only: a file gets one line.
    live = sys.stdout.isatty()
    if live:
        click.echo(f"  ⋯ {task}: scanning and deciding …", nl=False)
    report = await keeper.run_task(task)
    status = (
        "error: " + "; ".join(report.errors)
        if report.errors
        else (
            f"{report.planned} planned, {report.confirmed} confirmed, "
            f"{report.failed} failed, {sum(report.skipped.values())} left alone"
        )
    )
    click.echo(f"{CLEAR_LINE if live else ''}  ✓ {task}: {status}")
    return report


def _in_words(outcomes: Counter[str]) -> str:
    """``3 quitAdmin, 2 claim, 7 clean, 2 cleanAdmin; 24 left alone``."""
    acted: Counter[str] = Counter()
    left = 0
    for outcome, count in outcomes.items():
        action = outcome.partition(":")[0]
        if action == "leave":
            left += count
        else:
            acted[action] += count
    order = ["quitAdmin", "claim", "clean", "cleanAdmin"]
    named = sorted(acted, key=lambda a: order.index(a) if a in order else len(order))
    return ", ".join(f"{acted[a]} {a}" for a in named) + f"; {left} left alone"


def _by_action(counts: dict[str, int]) -> list[str]:
    """``clean: job_expired 7`` lines, one per action."""
    grouped: dict[str, list[str]] = {}
    for key, count in counts.items():
        action, _, reason = key.partition(":")
        grouped.setdefault(action, []).append(f"{reason} {count}")
    return [f"{action}: {', '.join(reasons)}" for action, reasons in grouped.items()]


def _differences(expected: Counter[str], found: Counter[str]) -> list[str]:
    return [
        f"{outcome}: {found[outcome]} (the world expects {expected[outcome]})"
        for outcome in sorted(expected.keys() | found.keys())
        if expected[outcome] != found[outcome]
    ]


def _print_summary(reports: list[PassReport], expected: Counter[str]) -> None:
    summary = Summary.of(reports)
    click.secho("\nsummary", bold=True)
    for report in reports:
        reclaimed = report.reclaimed_lamports / LAMPORTS_PER_SOL
        click.echo(
            f"  {report.task:14} sent {report.sent:>3}  confirmed {report.confirmed:>3}  "
            f"reclaimed {reclaimed:.6f} SOL"
        )
    lines = _by_action(summary.confirmed_actions)
    for index, line in enumerate(lines):
        click.echo(f"  {'confirmed' if index == 0 else '':14} {line}")
    alone = ", ".join(f"{reason} {n}" for reason, n in sorted(summary.left_alone.items()))
    click.echo(f"  {'left alone':14} {sum(summary.left_alone.values())}: {alone}")
    click.echo(
        f"  total reclaimed {summary.reclaimed_lamports / LAMPORTS_PER_SOL:.6f} SOL, "
        f"fees paid {summary.fees_lamports / LAMPORTS_PER_SOL:.6f} SOL, orphans {summary.orphans}"
    )
    differences = _differences(expected, summary.outcomes())
    if differences:
        click.echo("  ✗ differs from the world's expectation:")
        for difference in differences:
            click.echo(f"      {difference}")
    else:
        click.echo(
            f"  ✓ matches the world's expectation: {_in_words(summary.outcomes())} "
            f"({sum(expected.values())} labelled accounts)"
        )
    click.echo(summary.line())
