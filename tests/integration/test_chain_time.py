"""Decisions follow the chain's clock, never this machine's: skew it by days and see."""

from __future__ import annotations

import json
import time

from tests.integration.conftest import KeeperCli

DAY = 86_400


def _cleaned(stdout: str) -> set[str]:
    entries = map(json.loads, stdout.strip().splitlines()[:-1])
    return {e["account"] for e in entries if e["action"] == "clean"}


def test_world_clock_is_days_away_from_wall_time(cli: KeeperCli) -> None:
    assert abs(cli.chain.unix_timestamp - time.time()) > 2 * DAY


def test_skewing_the_chain_clock_forward_makes_more_jobs_due(cli: KeeperCli) -> None:
    labels = cli.chain.world.labels
    base = _cleaned(cli.invoke("run", "--once", "--dry-run").stdout)
    assert str(labels["done_expiry_boundary"]) not in base
    cli.chain.skew_clock(2 * DAY)
    later = _cleaned(cli.invoke("run", "--once", "--dry-run").stdout)
    assert base < later
    assert str(labels["done_expiry_boundary"]) in later
    assert str(labels["done_not_expired"]) in later


def test_skewing_the_chain_clock_back_makes_fewer_jobs_due(cli: KeeperCli) -> None:
    base = _cleaned(cli.invoke("run", "--once", "--dry-run").stdout)
    cli.chain.skew_clock(-30 * DAY)
    earlier = _cleaned(cli.invoke("run", "--once", "--dry-run").stdout)
    assert earlier < base


def test_boundary_one_second_later_is_due(cli: KeeperCli) -> None:
    boundary = str(cli.chain.world.labels["done_expiry_boundary"])
    assert boundary not in _cleaned(cli.invoke("run", "--once", "--dry-run").stdout)
    cli.chain.skew_clock(1)
    assert boundary in _cleaned(cli.invoke("run", "--once", "--dry-run").stdout)
