"""Watching signatures: one getSignatureStatuses per poll for every in-flight transaction.

Each ``Sender.execute`` waits on the board for its signature's next status; the board
polls once per ``poll_s`` for all of them together (256 signatures a request) and fetches
the block height once a round when anyone asked for it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Generic, TypeVar

import structlog

from keeper.errors import RpcError, RpcResponseError

if TYPE_CHECKING:
    from solders.signature import Signature

    from keeper.chain.endpoints import Rpc
    from keeper.chain.scan import Commitment

log = structlog.get_logger("keeper.chain.status")

MAX_SIGNATURES_PER_REQUEST: Final = 256
_RANK: Final = {"processed": 0, "confirmed": 1, "finalized": 2}
_INCOMPLETE: Final = "the status poll did not complete"

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SignatureStatus:
    slot: int
    err: object | None
    confirmation: str

    def reached(self, commitment: Commitment) -> bool:
        return _RANK.get(self.confirmation, -1) >= _RANK[commitment]


def parse_status(value: object) -> SignatureStatus | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("slot"), int):
        raise RpcResponseError("getSignatureStatuses: malformed status")
    confirmation = value.get("confirmationStatus")
    if not isinstance(confirmation, str):
        # Old nodes: no confirmationStatus; confirmations null means rooted.
        confirmation = "finalized" if value.get("confirmations") is None else "confirmed"
    return SignatureStatus(slot=value["slot"], err=value.get("err"), confirmation=confirmation)


@dataclass(frozen=True, slots=True)
class _Answer(Generic[T]):
    value: T | None
    error: str | None = None


class StatusBoard:
    """Batched status and block-height polling shared by concurrent confirmations."""

    def __init__(self, rpc: Rpc, *, poll_s: float, commitment: Commitment) -> None:
        self._rpc = rpc
        self._poll_s = poll_s
        self._commitment = commitment
        self._status_waiters: dict[Signature, list[asyncio.Future[_Answer[SignatureStatus]]]] = {}
        self._height_waiters: list[asyncio.Future[_Answer[int]]] = []
        self._task: asyncio.Task[None] | None = None

    async def next_status(self, signature: Signature) -> SignatureStatus | None:
        """The signature's status after the next poll (None: the node has not seen it)."""
        future: asyncio.Future[_Answer[SignatureStatus]] = (
            asyncio.get_running_loop().create_future()
        )
        self._status_waiters.setdefault(signature, []).append(future)
        self._ensure_polling()
        return _unwrap(await future)

    async def block_height(self) -> int:
        """The block height at the next poll."""
        future: asyncio.Future[_Answer[int]] = asyncio.get_running_loop().create_future()
        self._height_waiters.append(future)
        self._ensure_polling()
        height = _unwrap(await future)
        if height is None:
            raise RpcResponseError("getBlockHeight: no height")
        return height

    def _ensure_polling(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._poll(), name="signature-status-board")
            self._task.add_done_callback(_report_crash)

    async def _poll(self) -> None:
        while self._status_waiters or self._height_waiters:
            await asyncio.sleep(self._poll_s)
            statuses, self._status_waiters = self._status_waiters, {}
            heights, self._height_waiters = self._height_waiters, []
            try:
                await self._answer_statuses(statuses)
                await self._answer_heights(heights)
            finally:
                # Nobody may wait forever: whatever this round left unanswered (a bug, a
                # cancelled board) gets an error instead.
                for futures in statuses.values():
                    _resolve_all(futures, _Answer(None, _INCOMPLETE))
                _resolve_all(heights, _Answer(None, _INCOMPLETE))

    async def _answer_statuses(
        self, waiters: dict[Signature, list[asyncio.Future[_Answer[SignatureStatus]]]]
    ) -> None:
        signatures = list(waiters)
        for start in range(0, len(signatures), MAX_SIGNATURES_PER_REQUEST):
            part = signatures[start : start + MAX_SIGNATURES_PER_REQUEST]
            try:
                found = await self._statuses(part)
            except RpcError as error:
                log.warning("status poll failed", error=str(error))
                for signature in part:
                    _resolve_all(waiters[signature], _Answer(None, str(error)))
                continue
            for signature, status in zip(part, found, strict=True):
                _resolve_all(waiters[signature], _Answer(status))

    async def _answer_heights(self, waiters: list[asyncio.Future[_Answer[int]]]) -> None:
        if not waiters:
            return
        try:
            height = await self._rpc.call("getBlockHeight", [{"commitment": self._commitment}])
            if not isinstance(height, int):
                raise RpcResponseError("getBlockHeight: not an integer")
        except RpcError as error:
            _resolve_all(waiters, _Answer(None, str(error)))
            return
        _resolve_all(waiters, _Answer(height))

    async def _statuses(self, signatures: list[Signature]) -> list[SignatureStatus | None]:
        result = await self._rpc.call(
            "getSignatureStatuses",
            [[str(s) for s in signatures], {"searchTransactionHistory": False}],
        )
        values = result.get("value") if isinstance(result, dict) else None
        if not isinstance(values, list) or len(values) != len(signatures):
            raise RpcResponseError(f"getSignatureStatuses: expected {len(signatures)} values")
        return [parse_status(value) for value in values]


def _report_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("status board crashed", error=repr(task.exception()))


def _resolve_all(futures: list[asyncio.Future[_Answer[T]]], answer: _Answer[T]) -> None:
    for future in futures:
        if not future.done():  # a cancelled waiter is simply skipped
            future.set_result(answer)


def _unwrap(answer: _Answer[T]) -> T | None:
    if answer.error is not None:
        raise RpcError(answer.error)
    return answer.value
