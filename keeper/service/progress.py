"""A one-line progress display for long scans, on a terminal only.

The chain layer reports how a scan advances (``keeper.chain.scan.ScanObserver``); this
turns it into ``scanning job census: 412,000 accounts, 61,000/s, 6.8s`` on stderr,
rewritten in place and erased when the scan ends. When stderr is not a terminal (a pod, a
file, a pipe) nothing is shown: logs are the record there.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

_CLEAR = "\r\033[K"  # to the line's start, erase it
_MIN_SECONDS = 1.0  # short scans show nothing
_EVERY_SECONDS = 0.1  # redraw at most this often


@dataclass(slots=True)
class TerminalProgress:
    """A ``ScanObserver`` drawing on ``stream`` (a terminal)."""

    stream: TextIO
    clock: Callable[[], float] = time.monotonic
    _started: dict[str, float] = field(default_factory=dict)
    _drawn_at: float = 0.0
    _shown: bool = False

    def scan_progress(self, what: str, accounts: int) -> None:
        now = self.clock()
        started = self._started.setdefault(what, now)
        elapsed = now - started
        if elapsed < _MIN_SECONDS or now - self._drawn_at < _EVERY_SECONDS:
            return
        self._drawn_at = now
        rate = accounts / elapsed if elapsed else 0.0
        self.stream.write(
            f"{_CLEAR}scanning {what}: {accounts:,} accounts, {rate:,.0f}/s, {elapsed:.1f}s"
        )
        self.stream.flush()
        self._shown = True

    def scan_finished(self, what: str, accounts: int) -> None:  # noqa: ARG002 - protocol
        self._started.pop(what, None)
        if self._shown:
            self.stream.write(_CLEAR)
            self.stream.flush()
            self._shown = False


def terminal_progress(stream: TextIO | None = None) -> TerminalProgress | None:
    """A display on ``stream`` (default stderr) when it is a terminal, else None."""
    out = stream or sys.stderr
    return TerminalProgress(out) if out.isatty() else None
