"""When not to believe the RPC: the local clock's veto and the verify endpoints' agreement.

Decisions run on chain time. Two rules decide whether an action may rest on it:

- **the clock veto**: a healthy cluster's clock never runs ahead of real time, so when chain
  time leads this machine's clock by more than ``max_lead`` seconds the time-based actions
  (``TIME_BASED``) are withheld. The local clock only ever withholds, never decides;
- **agreement**: an admin action (the program checks nothing but the admin's signature for
  ``quitAdmin`` and ``cleanAdmin``) is sent only when every verify endpoint judges it the same
  way on its own reads, and, when it is time-based, its chain time is within ``tolerance``.

Pure: times come in as numbers.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import TYPE_CHECKING, Final

from keeper.program.instructions import MaintenanceInstruction
from keeper.tasks.plan import Action, Plan, Reason

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

# Actions whose reason compares chain time with an account's times. A clock that runs ahead
# makes live runs look timed out and unexpired jobs look expired. The rest (a run whose job
# is Done or gone, a market that is gone, a stopped job) read no time: a wrong clock cannot
# cause them, so the veto leaves them alone.
TIME_BASED: Final = frozenset({Reason.RUN_TIMED_OUT, Reason.JOB_EXPIRED})

# Instructions the program accepts on the admin's signature alone: the keeper is their only
# guard, so verify endpoints must agree before each is sent.
NEEDS_AGREEMENT: Final = frozenset(
    {MaintenanceInstruction.QUIT_ADMIN, MaintenanceInstruction.CLEAN_ADMIN}
)


def clock_lead(chain_unix: float, wall_unix: float) -> float:
    """Seconds chain time runs ahead of this machine's clock (negative when behind)."""
    return chain_unix - wall_unix


def clock_vetoes(chain_unix: float, wall_unix: float, max_lead: float) -> bool:
    """True when time-based actions must wait: chain time leads by more than ``max_lead``."""
    return clock_lead(chain_unix, wall_unix) > max_lead


def is_time_based(action: Action) -> bool:
    return action.reason in TIME_BASED


def needs_agreement(action: Action) -> bool:
    return action.kind in NEEDS_AGREEMENT


def times_agree(primary: int, others: Iterable[int], tolerance: int) -> bool:
    """Every other endpoint's chain time is within ``tolerance`` seconds of ``primary``."""
    return all(abs(other - primary) <= tolerance for other in others)


def agreement(
    action: Action,
    verdicts: Sequence[Reason | None],
    *,
    times_agreed: bool,
) -> Reason | None:
    """None: every verify endpoint also says send (``verdicts``: each endpoint's re-judgement,
    None meaning "send"). Otherwise VERIFY_DISAGREES. No verdicts at all never agrees."""
    if not verdicts:
        return Reason.VERIFY_UNAVAILABLE
    if any(verdict is not None for verdict in verdicts):
        return Reason.VERIFY_DISAGREES
    if is_time_based(action) and not times_agreed:
        return Reason.VERIFY_DISAGREES
    return None


def withhold(plan: Plan, why: Sequence[Reason | None]) -> Plan:
    """``plan`` without the actions whose entry in ``why`` is a reason; those become skips."""
    if len(why) != len(plan.actions):
        raise ValueError(f"{len(why)} verdicts for {len(plan.actions)} actions")
    kept = tuple(action for action, reason in zip(plan.actions, why, strict=True) if not reason)
    skips = Counter(plan.skips)
    skips.update(reason for reason in why if reason is not None)
    return dataclasses.replace(plan, actions=kept, skips=skips)  # the backlog stays
