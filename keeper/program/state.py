"""The state bytes the program actually writes.

The IDL's ``JobState`` enum lists Queued, Done, Stopped in that order, which would
suggest 0, 1, 2. The program stores ``JobState::Done as u8`` from a Rust enum whose
discriminants are explicit: Queued 0, Done 2, Stopped 3. Byte 1 ("Running") was written
only before 2023 and is never stored now.
"""

from __future__ import annotations

from enum import IntEnum


class JobState(IntEnum):
    QUEUED = 0
    DONE = 2
    STOPPED = 3

    @classmethod
    def from_byte(cls, value: int) -> JobState | None:
        """The state for a stored byte, or None for a byte the program does not write."""
        try:
            return cls(value)
        except ValueError:
            return None


class QueueType(IntEnum):
    JOB = 0  # jobs wait for nodes
    NODE = 1  # nodes wait for jobs
    EMPTY = 255  # not 2, whatever the enum order in the IDL suggests
