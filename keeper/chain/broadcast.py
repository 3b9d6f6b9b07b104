"""Sending one signed transaction and watching it until it lands or its blockhash expires.

The same signed bytes are re-sent every ``resend_interval_s`` (``maxRetries`` 0: the node
does not re-send for us); statuses come from the shared ``StatusBoard``. Only when the
block height passes ``lastValidBlockHeight`` is the transaction ``expired`` — the caller
then re-checks the accounts before building anything new. ``AlreadyProcessed`` from a
send means it landed earlier: the status poll then reports it.

Statuses alone never declare a transaction lost. Past its blockhash's lifetime with no
landed status, ``getTransaction`` is asked: found, it landed (confirmed or failed);
answered null while every status poll answered too, it ``expired``. When the status
source failed (errors, or ``MAX_POLL_FAILURES`` in a row) and history cannot settle it, the
outcome is ``unknown``: it may have landed, and the caller reads the accounts to see.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

import structlog

from keeper.chain.outcome import Fault, SendOutcome
from keeper.chain.rpc import RpcCallError
from keeper.chain.status import SignatureStatus
from keeper.chain.transaction import BUDGET_PREFIX
from keeper.chain.txerror import ALREADY_PROCESSED, parse_tx_error
from keeper.errors import RpcError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from solders.signature import Signature

    from keeper.chain.endpoints import Rpc
    from keeper.chain.scan import Commitment
    from keeper.chain.status import StatusBoard

log = structlog.get_logger("keeper.chain.broadcast")

# Consecutive failed status polls after which the transaction is given up as abandoned.
MAX_POLL_FAILURES: Final = 60


class SendListener(Protocol):
    def transaction_sent(self, *, resend: bool) -> None: ...


@dataclass(slots=True)
class _Watch:
    """What one delivery did so far: kept outside the loop so a deadline loses none of it."""

    last_send: float
    resends: int = 0


@dataclass(frozen=True, slots=True)
class Delivery:
    outcome: SendOutcome
    failure: Fault | None = None
    confirmation_seconds: float | None = None
    resends: int = 0
    error: str | None = None
    blockhash_expired: bool = False


@dataclass(frozen=True, slots=True)
class _Unsettled:
    """Watching ended without a landed status: history must settle it."""

    expired: bool  # the block height passed lastValidBlockHeight
    statuses_answered: bool  # every status poll answered (null), none failed


class _Unanswered(Exception):
    """getTransaction failed: history cannot say whether the transaction landed."""


def is_already_processed(error: RpcCallError) -> bool:
    data: Any = error.data
    err = data.get("err") if isinstance(data, dict) else None
    return err == ALREADY_PROCESSED or "already been processed" in str(error)


class Broadcaster:
    def __init__(  # noqa: PLR0913 - collaborators and settings of one delivery loop
        self,
        rpc: Rpc,
        board: StatusBoard,
        *,
        resend_interval_s: float,
        commitment: Commitment,
        abandon: asyncio.Event,
        listener: SendListener,
    ) -> None:
        self._rpc = rpc
        self._board = board
        self._resend_interval_s = resend_interval_s
        self._commitment: Commitment = commitment
        self._abandon = abandon
        self._listener = listener

    async def deliver(
        self,
        wire: bytes,
        signature: Signature,
        last_valid: int,
        kept: Sequence[int],
        *,
        abandon_at: float | None = None,
    ) -> Delivery:
        """Send ``wire`` and re-send it until it lands, expires or is abandoned.

        At ``abandon_at`` (loop time) watching stops and the outcome is ``abandoned`` (it may
        still land): the caller always gets a result to count, never a cancellation.
        """
        loop = asyncio.get_running_loop()
        encoded = base64.b64encode(wire).decode()
        started = loop.time()
        watch = _Watch(last_send=started)
        try:
            async with asyncio.timeout_at(abandon_at):
                rejected = await self._send(encoded, first=True)
                if rejected is not None:
                    return Delivery(SendOutcome.REJECTED, error=rejected)
                ended = await self._watch(encoded, signature, last_valid, watch)
                if isinstance(ended, _Unsettled):
                    seconds = loop.time() - started
                    return await self._settle(
                        signature,
                        kept,
                        seconds,
                        watch=watch,
                        unsettled=ended,
                        abandon_at=abandon_at,
                    )
        except TimeoutError:
            log.warning("pass deadline: stopped watching", signature=str(signature))
            return Delivery(
                SendOutcome.ABANDONED, resends=watch.resends, error="pass deadline (may land)"
            )
        if isinstance(ended, Delivery):
            return ended
        seconds = loop.time() - started
        return await self._landed(
            ended, signature, kept, seconds=seconds, resends=watch.resends, abandon_at=abandon_at
        )

    async def _watch(
        self, encoded: str, signature: Signature, last_valid: int, watch: _Watch
    ) -> SignatureStatus | Delivery | _Unsettled:
        """Until it lands (its status), shutdown abandons it (a Delivery), or no landed
        status came before expiry or the status source kept failing (``_Unsettled``)."""
        loop = asyncio.get_running_loop()
        failures, status_failed = 0, False
        while not self._abandon.is_set():
            try:
                status = await self._board.next_status(signature)
                failures = 0
            except RpcError:
                status, failures, status_failed = None, failures + 1, True
                if failures >= MAX_POLL_FAILURES:
                    log.warning("status source failing: asking history", signature=str(signature))
                    return _Unsettled(expired=False, statuses_answered=False)
            if status is not None and status.reached(self._commitment):
                return status
            if loop.time() - watch.last_send < self._resend_interval_s:
                continue
            if await self._expired(last_valid):
                try:
                    final = await self._last_look(signature)
                except RpcError:
                    final, status_failed = None, True
                return final or _Unsettled(expired=True, statuses_answered=not status_failed)
            await self._send(encoded, first=False)
            watch.resends, watch.last_send = watch.resends + 1, loop.time()
        return Delivery(SendOutcome.ABANDONED, resends=watch.resends, error="shutdown deadline")

    async def _settle(  # noqa: PLR0913 - the facts gathered about one delivery
        self,
        signature: Signature,
        kept: Sequence[int],
        seconds: float,
        *,
        watch: _Watch,
        unsettled: _Unsettled,
        abandon_at: float | None,
    ) -> Delivery:
        """No landed status came: ask history. Only a null from both statuses and history
        after expiry makes it ``expired``; anything less certain is ``unknown``."""
        expired = unsettled.expired
        try:
            found = await self._history(signature)
        except _Unanswered as error:
            return Delivery(
                SendOutcome.UNKNOWN,
                resends=watch.resends,
                error=f"statuses and history unavailable: {error}",
                blockhash_expired=expired,
            )
        if found is not None:
            landed = await self._landed(
                found,
                signature,
                kept,
                seconds=seconds,
                resends=watch.resends,
                abandon_at=abandon_at,
            )
            return dataclasses.replace(landed, blockhash_expired=expired)
        if expired and unsettled.statuses_answered:
            return Delivery(SendOutcome.EXPIRED, resends=watch.resends, blockhash_expired=True)
        return Delivery(
            SendOutcome.UNKNOWN,
            resends=watch.resends,
            error="the status source failed and history does not show it",
            blockhash_expired=expired,
        )

    async def _history(self, signature: Signature) -> SignatureStatus | None:
        """The transaction as ``getTransaction`` shows it (None: not found)."""
        try:
            result = await self._rpc.call("getTransaction", [str(signature), self._tx_config()])
        except RpcError as error:
            raise _Unanswered(str(error)) from None
        if result is None:
            return None
        meta = result.get("meta") if isinstance(result, dict) else None
        slot = result.get("slot") if isinstance(result, dict) else None
        if not isinstance(meta, dict) or not isinstance(slot, int):
            raise _Unanswered("getTransaction: malformed answer")
        return SignatureStatus(slot=slot, err=meta.get("err"), confirmation=self._commitment)

    def _tx_config(self) -> dict[str, object]:
        return {
            "encoding": "json",
            "commitment": self._commitment,
            "maxSupportedTransactionVersion": 0,
        }

    async def _send(self, encoded: str, *, first: bool) -> str | None:
        """Send once; returns an error text only for a first send the node refuses."""
        config = {
            "encoding": "base64",
            "skipPreflight": True,
            "maxRetries": 0,
            "preflightCommitment": self._commitment,
        }
        try:
            await self._rpc.call("sendTransaction", [encoded, config])
        except RpcCallError as error:
            if is_already_processed(error):
                return None
            if first:
                return str(error)
            log.warning("re-send refused", error=str(error))
        except RpcError as error:
            # It may have reached the node anyway; the next round re-sends it.
            log.warning("send failed", error=str(error), resend=not first)
        self._listener.transaction_sent(resend=not first)
        return None

    async def _expired(self, last_valid: int) -> bool:
        try:
            height = await self._board.block_height()
        except RpcError as error:
            log.warning("block height unavailable", error=str(error))
            return False
        return height > last_valid

    async def _last_look(self, signature: Signature) -> SignatureStatus | None:
        status = await self._board.next_status(signature)
        return status if status is not None and status.reached(self._commitment) else None

    async def _landed(  # noqa: PLR0913 - the landed status and what the result reports
        self,
        status: SignatureStatus,
        signature: Signature,
        kept: Sequence[int],
        *,
        seconds: float,
        resends: int,
        abandon_at: float | None,
    ) -> Delivery:
        if status.err is None:
            return Delivery(SendOutcome.CONFIRMED, confirmation_seconds=seconds, resends=resends)
        fault = parse_tx_error(status.err)
        try:
            async with asyncio.timeout_at(abandon_at):
                logs = await self._logs(signature)
        except TimeoutError:
            logs = ()  # the names then list every candidate: the outcome stands
        position = None if fault.instruction is None else fault.instruction - BUDGET_PREFIX
        index = kept[position] if position is not None and 0 <= position < len(kept) else None
        failure = Fault(index=index, code=fault.code, names=fault.names(logs))
        return Delivery(
            SendOutcome.FAILED,
            failure=failure,
            confirmation_seconds=seconds,
            resends=resends,
            error="/".join(failure.names),
        )

    async def _logs(self, signature: Signature) -> tuple[str, ...]:
        """The landed transaction's program log, best effort (names the error exactly)."""
        try:
            result = await self._rpc.call("getTransaction", [str(signature), self._tx_config()])
        except RpcError:
            return ()
        meta = result.get("meta") if isinstance(result, dict) else None
        logs = meta.get("logMessages") if isinstance(meta, dict) else None
        return tuple(str(line) for line in logs) if isinstance(logs, list) else ()
