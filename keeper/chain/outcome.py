"""What became of one batch: the sender's result types."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from keeper.program.error_codes import ACCOUNT_ALREADY_IN_USE, ACCOUNT_NOT_INITIALIZED

if TYPE_CHECKING:
    from collections.abc import Mapping

    from solders.signature import Signature


class SendOutcome(StrEnum):
    """How a batch ended. ``confirmed`` and ``failed`` landed (and paid a fee); ``unknown``
    and ``abandoned`` may have: count their fee as spent, their effects only once the chain
    shows them."""

    CONFIRMED = "confirmed"  # landed without error at the sender's commitment
    FAILED = "failed"  # landed with an error: fee paid, nothing changed (see ``failure``)
    EXPIRED = "expired"  # never landed before lastValidBlockHeight: re-check, then rebuild
    ALL_DROPPED = "all_dropped"  # every instruction failed simulation: nothing sent
    REJECTED = "rejected"  # the transaction as a whole failed simulation or sending
    REFUSED = "refused"  # even a zero unit price would exceed the fee cap: nothing sent
    ABANDONED = "abandoned"  # shutdown stopped watching (it may still land) or never began
    UNKNOWN = "unknown"  # sent, but the status source failed and the chain has not told


class FeeDecision(StrEnum):
    AS_ASKED = "as_asked"
    PRICE_LOWERED = "price_lowered"  # the unit price was lowered to fit max_fee_lamports
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class Fault:
    """Why an instruction was dropped, or why the landed transaction failed.

    ``index`` points into the caller's batch (None: the transaction as a whole failed).
    ``names`` come from the program log's ``Error Code:`` line, else every candidate.
    """

    index: int | None
    code: int | None
    names: tuple[str, ...]

    @property
    def already_closed(self) -> bool:
        """3012 AccountNotInitialized: someone closed the account first — a skip, not an error."""
        return self.code == ACCOUNT_NOT_INITIALIZED

    @property
    def already_in_use(self) -> bool:
        """The System program's AccountAlreadyInUse: for a claim, its run account (derived
        from the node's key and the job) exists already — an earlier send of it landed."""
        return self.code == ACCOUNT_ALREADY_IN_USE


@dataclass(frozen=True, slots=True)
class BatchResult:
    """The result of ``Sender.execute``. Indices refer to the caller's batch."""

    outcome: SendOutcome
    signature: Signature | None = None
    kept: tuple[int, ...] = ()
    dropped: Mapping[int, Fault] = field(default_factory=dict)
    failure: Fault | None = None
    fee_lamports: int = 0
    unit_price: int = 0
    unit_limit: int = 0
    units: int | None = None
    fee_decision: FeeDecision = FeeDecision.AS_ASKED
    confirmation_seconds: float | None = None
    simulations: int = 0
    resends: int = 0
    error: str | None = None
    blockhash_expired: bool = False  # seen past lastValidBlockHeight: it can land no more

    @property
    def landed(self) -> bool:
        return self.outcome in {SendOutcome.CONFIRMED, SendOutcome.FAILED}

    @property
    def may_have_landed(self) -> bool:
        """Sent, and not known to be lost: what a fee budget must count as spent."""
        return self.landed or self.outcome in {SendOutcome.UNKNOWN, SendOutcome.ABANDONED}

    @property
    def fee_paid_lamports(self) -> int:
        """The fee actually charged: only a landed transaction pays."""
        return self.fee_lamports if self.landed else 0

    @property
    def already_closed(self) -> tuple[int, ...]:
        """Batch indices dropped because another party had already closed the account."""
        return tuple(i for i, fault in self.dropped.items() if fault.already_closed)
