"""The scan progress display: drawn on a terminal for long scans, erased at the end, and
absent when stderr is not a terminal."""

from __future__ import annotations

import io

from keeper.service.progress import TerminalProgress, terminal_progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_long_scan_shows_accounts_rate_and_elapsed_then_erases() -> None:
    screen, clock = Terminal(), Clock()
    progress = TerminalProgress(screen, clock=clock)
    progress.scan_progress("job census", 10_000)  # starts the scan's clock
    clock.now += 2.0
    progress.scan_progress("job census", 50_000)
    assert "scanning job census: 50,000 accounts, 25,000/s, 2.0s" in screen.getvalue()
    progress.scan_finished("job census", 50_000)
    assert screen.getvalue().endswith("\r\033[K")


def test_short_scan_draws_nothing() -> None:
    screen, clock = Terminal(), Clock()
    progress = TerminalProgress(screen, clock=clock)
    progress.scan_progress("markets", 5)
    clock.now += 0.2
    progress.scan_progress("markets", 9)
    progress.scan_finished("markets", 9)
    assert screen.getvalue() == ""


def test_no_display_when_not_a_terminal() -> None:
    assert terminal_progress(io.StringIO()) is None
    assert isinstance(terminal_progress(Terminal()), TerminalProgress)
