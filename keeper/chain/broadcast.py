"""Sending one signed transaction and watching it until it lands or its blockhash expires.

The same signed bytes are re-sent every ``resend_interval_s`` (``maxRetries`` 0: the node
does not re-send for us); statuses come from the shared ``StatusBoard``. Only when the
block height passes ``lastValidBlockHeight`` is the transaction ``expired`` — the caller
then re-checks the accounts before building anything new. ``AlreadyProcessed`` from a
send means it landed earlier: the status poll then reports it.
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

import structlog

from keeper.chain.outcome import Fault, SendOutcome
from keeper.chain.rpc import RpcCallError
from keeper.chain.transaction import BUDGET_PREFIX
from keeper.chain.txerror import ALREADY_PROCESSED, parse_tx_error
from keeper.errors import RpcError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from solders.signature import Signature

    from keeper.chain.endpoints import Rpc
    from keeper.chain.scan import Commitment
    from keeper.chain.status import SignatureStatus, StatusBoard

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
    ) -> SignatureStatus | Delivery:
        """Until it lands (its status), expires or shutdown abandons it (a Delivery)."""
        loop = asyncio.get_running_loop()
        failures = 0
        while not self._abandon.is_set():
            try:
                status = await self._board.next_status(signature)
                failures = 0
            except RpcError:
                status, failures = None, failures + 1
                if failures >= MAX_POLL_FAILURES:
                    return Delivery(SendOutcome.ABANDONED, resends=watch.resends, error="no status")
            if status is not None and status.reached(self._commitment):
                return status
            if loop.time() - watch.last_send < self._resend_interval_s:
                continue
            if await self._expired(last_valid):
                final = await self._last_look(signature)
                return final or Delivery(SendOutcome.EXPIRED, resends=watch.resends)
            await self._send(encoded, first=False)
            watch.resends, watch.last_send = watch.resends + 1, loop.time()
        return Delivery(SendOutcome.ABANDONED, resends=watch.resends, error="shutdown deadline")

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
        try:
            status = await self._board.next_status(signature)
        except RpcError:
            return None
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
        config = {
            "encoding": "json",
            "commitment": self._commitment,
            "maxSupportedTransactionVersion": 0,
        }
        try:
            result = await self._rpc.call("getTransaction", [str(signature), config])
        except RpcError:
            return ()
        meta = result.get("meta") if isinstance(result, dict) else None
        logs = meta.get("logMessages") if isinstance(meta, dict) else None
        return tuple(str(line) for line in logs) if isinstance(logs, list) else ()
