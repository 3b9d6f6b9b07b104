"""Transaction errors as the RPC reports them (``err`` of a simulation or a status)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from keeper.program.error_codes import ACCOUNT_NOT_INITIALIZED, error_names

if TYPE_CHECKING:
    from collections.abc import Iterable

ALREADY_PROCESSED = "AlreadyProcessed"


@dataclass(frozen=True, slots=True)
class TxFault:
    """One ``err``: which instruction of the transaction (if any), its code, and its kind.

    ``kind`` is the error's variant: ``Custom`` for a program error (``code`` set), a
    built-in instruction error (``InvalidAccountData``) or a transaction-level one
    (``InsufficientFundsForFee``, ``AlreadyProcessed``).
    """

    instruction: int | None
    code: int | None
    kind: str

    def names(self, logs: Iterable[str] = ()) -> tuple[str, ...]:
        """The error's name(s): the program log's ``Error Code:`` first, else every candidate."""
        if self.code is None:
            return (self.kind,)
        return error_names(self.code, logs) or (f"Custom({self.code})",)

    @property
    def already_closed(self) -> bool:
        """Anchor's AccountNotInitialized: another keeper (or the owner) closed it first."""
        return self.code == ACCOUNT_NOT_INITIALIZED


def _variant(value: object) -> tuple[str, object]:
    """``"Name"`` or ``{"Name": payload}`` -> (name, payload)."""
    if isinstance(value, str):
        return value, None
    if isinstance(value, dict) and len(value) == 1:
        ((name, payload),) = value.items()
        return str(name), payload
    return repr(value), None


def parse_tx_error(err: object) -> TxFault:
    """A ``TxFault`` from the JSON ``err`` of a simulation or signature status."""
    kind, payload = _variant(err)
    if kind != "InstructionError":
        return TxFault(instruction=None, code=None, kind=kind)
    if not isinstance(payload, list) or len(payload) != 2 or not isinstance(payload[0], int):
        return TxFault(instruction=None, code=None, kind=kind)
    index, detail = payload
    inner, inner_payload = _variant(detail)
    code = inner_payload if inner == "Custom" and isinstance(inner_payload, int) else None
    return TxFault(instruction=index, code=code, kind=inner)
