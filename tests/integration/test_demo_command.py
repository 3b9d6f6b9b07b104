"""`nosana-keeper demo` (the README's first command) resolves the demo world."""

from __future__ import annotations

import json
import re

from click.testing import CliRunner

from keeper.service.cli import main


def test_demo_resolves_every_expected_case() -> None:
    result = CliRunner().invoke(main, ["demo"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])["summary"]
    assert summary["errors"] == 0
    assert summary["failed"] == 0
    # 3 quitAdmin + 2 claim + 7 clean + 2 cleanAdmin, as the world's labels expect.
    assert summary["confirmed"] == 14
    assert summary["tasks"]["expired_runs"]["confirmed"] == 3
    assert summary["tasks"]["stopped_jobs"]["confirmed"] == 2
    assert summary["tasks"]["finished_jobs"]["confirmed"] == 9
    assert summary["orphans"] == 5
    assert "matches the world's expectation" in result.stdout


def test_demo_shows_live_mode_cleaning_a_job_as_it_expires_without_a_full_read() -> None:
    result = CliRunner().invoke(main, ["demo"])
    assert result.exit_code == 0, result.output
    [line] = [line for line in result.stdout.splitlines() if "live mode: cleaned" in line]
    # Cleaned as it expired (one batch after the older jobs the start read filed, due
    # first), by the feed and the book alone: no getProgramAccounts in between.
    assert re.search(r"\(\d s after it fell due\), 0 getProgramAccounts calls in between", line)
    [filed] = [line for line in result.stdout.splitlines() if "the start read filed" in line]
    assert "filed 0 " not in filed  # the world's not-yet-due Done jobs were kept for later
