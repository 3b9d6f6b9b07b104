"""Simulate, price, sign, send and confirm one batch of maintenance instructions.

``Sender.execute`` is the only place a transaction is signed. Before anything else every
instruction must pass the program layer's allow-list (else ``SafetyViolation``). Then:

1. simulate with a 1,400,000-unit limit (``replaceRecentBlockhash``, no signature check);
   on ``InstructionError [i, ...]`` drop that instruction, recording the error's name
   (3012 AccountNotInitialized: "already closed"), and simulate the rest again;
2. unit limit = simulated units x margin; fee = 5,000 x signatures + price x limit / 10^6;
   over ``max_fee_lamports`` the price is lowered to fit, or the batch is refused;
3. sign with a fresh blockhash and hand the bytes to the ``Broadcaster`` (send, re-send,
   confirm or expire).

Many ``execute`` calls may run concurrently: their statuses are polled together. Two
in-flight batches never act on the same account (``SafetyViolation``). ``shutdown`` stops
new batches and gives in-flight ones a deadline before they end ``abandoned``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
from typing import TYPE_CHECKING, Protocol

from solders.hash import Hash

from keeper.chain.broadcast import Broadcaster
from keeper.chain.outcome import BatchResult, FeeDecision, SendOutcome
from keeper.chain.simulation import simulate_until_clean
from keeper.chain.status import StatusBoard
from keeper.chain.transaction import (
    compile_message,
    highest_price_within,
    sign,
    unit_limit_for,
    unsigned_bytes,
)
from keeper.errors import RpcResponseError, SafetyViolation, TransactionError
from keeper.program.ids import COMPUTE_BUDGET_PROGRAM
from keeper.program.instructions import allowed
from keeper.program.limits import (
    MAX_COMPUTE_UNITS,
    MAX_TRANSACTION_BYTES,
    TxVersion,
    fee_lamports,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from solders.instruction import Instruction
    from solders.keypair import Keypair
    from solders.pubkey import Pubkey

    from keeper.chain.endpoints import Rpc
    from keeper.chain.scan import Commitment
    from keeper.chain.simulation import Survivors
    from keeper.chain.transaction import AnyMessage


class SenderObserver(Protocol):
    """Told about each transaction sent and each batch finished. Wired to metrics."""

    def transaction_sent(self, *, resend: bool) -> None: ...

    def batch_done(self, result: BatchResult) -> None: ...


class NullSenderObserver:
    def transaction_sent(self, *, resend: bool) -> None:
        pass

    def batch_done(self, result: BatchResult) -> None:
        pass


class Sender:
    def __init__(  # noqa: PLR0913 - each knob is a setting, named at the call site
        self,
        rpc: Rpc,
        *,
        fee_payer: Keypair,
        program_id: Pubkey,
        observer: SenderObserver | None = None,
        resend_interval_s: float = 2.0,
        confirm_poll_s: float = 0.5,
        commitment: Commitment = "confirmed",
        version: TxVersion = "v0",
    ) -> None:
        self._rpc = rpc
        self._payer = fee_payer
        self._program_id = program_id
        self._observer: SenderObserver = observer or NullSenderObserver()
        self._commitment: Commitment = commitment
        self._version: TxVersion = version
        self._targets: set[Pubkey] = set()
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._draining = False
        self._abandon = asyncio.Event()
        self._broadcaster = Broadcaster(
            rpc,
            StatusBoard(rpc, poll_s=confirm_poll_s, commitment=commitment),
            resend_interval_s=resend_interval_s,
            commitment=commitment,
            abandon=self._abandon,
            listener=self._observer,
        )

    @property
    def in_flight(self) -> int:
        """Batches between their first simulation and their result."""
        return self._in_flight

    async def execute(  # noqa: PLR0913 - each is a setting or the caller's deadline
        self,
        batch: Sequence[Instruction],
        *,
        extra_signers: Sequence[Keypair] = (),
        unit_price: int,
        unit_limit_margin: float = 1.1,
        max_fee_lamports: int,
        abandon_at: float | None = None,
    ) -> BatchResult:
        """Land ``batch`` (what survives simulation of it) in one transaction.

        Raises ``SafetyViolation`` (a bug: nothing signed), ``TransactionError`` when the
        batch cannot fit one transaction (a packing bug), and ``RpcError`` when simulation
        or the blockhash cannot be fetched (nothing sent). Once a transaction is out, RPC
        failures only delay it: the result's outcome says how it ended.

        ``abandon_at`` (loop time) is the caller's deadline: reached before signing, it
        raises ``TimeoutError`` (nothing sent); reached once the transaction is out, the
        result is ``abandoned`` (it may still land), so a deadline never loses a sent
        transaction's result.
        """
        self._check(batch, extra_signers)
        if unit_limit_margin < 1:
            raise ValueError("unit_limit_margin must be at least 1")
        if self._draining:
            return BatchResult(SendOutcome.ABANDONED, error="the sender is shutting down")
        with self._hold(batch):
            result = await self._execute(
                batch,
                extra_signers,
                unit_price,
                unit_limit_margin,
                max_fee_lamports,
                abandon_at=abandon_at,
            )
        self._observer.batch_done(result)
        return result

    async def shutdown(self, deadline_s: float) -> None:
        """Refuse new batches; give in-flight ones ``deadline_s`` to land, then abandon them."""
        self._draining = True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(deadline_s):
                await self._idle.wait()
        self._abandon.set()
        await self._idle.wait()

    # -- checks -----------------------------------------------------------------------

    def _check(self, batch: Sequence[Instruction], extra_signers: Sequence[Keypair]) -> None:
        available = {self._payer.pubkey(), *(k.pubkey() for k in extra_signers)}
        for index, ix in enumerate(batch):
            # Compute budget passes the allow-list, but the sender alone sets it.
            if ix.program_id == COMPUTE_BUDGET_PROGRAM or not allowed(ix, self._program_id):
                raise SafetyViolation(
                    f"instruction {index} (program {ix.program_id}) is not a maintenance "
                    f"instruction of {self._program_id}; nothing was signed"
                )
            for meta in ix.accounts:
                if meta.is_signer and meta.pubkey not in available:
                    raise SafetyViolation(
                        f"instruction {index} needs a signature from {meta.pubkey}, "
                        "which the keeper does not hold; nothing was signed"
                    )

    @contextlib.contextmanager
    def _hold(self, batch: Sequence[Instruction]) -> Iterator[None]:
        """Reserve the accounts the batch acts on (each instruction's first) while in flight."""
        targets = {ix.accounts[0].pubkey for ix in batch}
        busy = targets & self._targets
        if busy:
            raise SafetyViolation(
                f"{len(busy)} account(s) are in another in-flight transaction, "
                f"e.g. {next(iter(busy))}; nothing was signed"
            )
        self._targets |= targets
        self._in_flight += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._targets -= targets
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()

    # -- steps ------------------------------------------------------------------------

    async def _execute(  # noqa: PLR0913 - execute's arguments, passed on
        self,
        batch: Sequence[Instruction],
        extra_signers: Sequence[Keypair],
        unit_price: int,
        margin: float,
        max_fee: int,
        *,
        abandon_at: float | None,
    ) -> BatchResult:
        self._check_size(batch, unit_price)
        async with asyncio.timeout_at(abandon_at):  # nothing is signed in here
            survivors = await simulate_until_clean(
                self._rpc,
                batch,
                wire_for=functools.partial(self._simulation_wire, unit_price=unit_price),
                commitment=self._commitment,
            )
            sendable = survivors.error is None and bool(survivors.live)
            fresh = await self._latest_blockhash() if sendable else None
        base = _base_result(survivors)
        if survivors.error is not None:
            return dataclasses.replace(base, outcome=SendOutcome.REJECTED, error=survivors.error)
        if fresh is None:
            return base  # every instruction dropped in simulation
        blockhash, last_valid = fresh
        instructions = [batch[i] for i in survivors.live]
        limit = unit_limit_for(survivors.units, margin)
        message = self._compile(instructions, limit, unit_price, blockhash)
        signatures = message.header.num_required_signatures
        priced = dataclasses.replace(
            base,
            unit_limit=limit,
            unit_price=unit_price,
            fee_lamports=fee_lamports(signatures, unit_price, limit),
        )
        if priced.fee_lamports > max_fee:
            lowered = highest_price_within(max_fee, signatures, limit)
            if lowered is None:
                return dataclasses.replace(
                    priced,
                    outcome=SendOutcome.REFUSED,
                    fee_decision=FeeDecision.REFUSED,
                    error=f"{signatures} signature(s) alone cost more than {max_fee} lamports",
                )
            message = self._compile(instructions, limit, lowered, blockhash)
            priced = dataclasses.replace(
                priced,
                unit_price=lowered,
                fee_lamports=fee_lamports(signatures, lowered, limit),
                fee_decision=FeeDecision.PRICE_LOWERED,
            )
        wire, signature = sign(message, [self._payer, *extra_signers])
        delivery = await self._broadcaster.deliver(
            wire, signature, last_valid, survivors.live, abandon_at=abandon_at
        )
        return dataclasses.replace(
            priced,
            outcome=delivery.outcome,
            signature=signature,
            failure=delivery.failure,
            confirmation_seconds=delivery.confirmation_seconds,
            resends=delivery.resends,
            error=delivery.error,
            blockhash_expired=delivery.blockhash_expired,
        )

    def _check_size(self, batch: Sequence[Instruction], unit_price: int) -> None:
        size = len(self._simulation_wire(batch, unit_price=unit_price))
        if size > MAX_TRANSACTION_BYTES:
            raise TransactionError(
                f"the batch of {len(batch)} instructions makes a {size}-byte transaction, "
                f"over the {MAX_TRANSACTION_BYTES}-byte limit (a packing bug); nothing was sent"
            )

    def _simulation_wire(self, instructions: Sequence[Instruction], *, unit_price: int) -> bytes:
        # Any blockhash will do: the node replaces it (replaceRecentBlockhash).
        message = self._compile(instructions, MAX_COMPUTE_UNITS, unit_price, Hash.default())
        return unsigned_bytes(message)

    def _compile(
        self, instructions: Sequence[Instruction], limit: int, price: int, blockhash: Hash
    ) -> AnyMessage:
        return compile_message(
            instructions,
            payer=self._payer.pubkey(),
            unit_limit=limit,
            unit_price=price,
            blockhash=blockhash,
            version=self._version,
        )

    async def _latest_blockhash(self) -> tuple[Hash, int]:
        result = await self._rpc.call("getLatestBlockhash", [{"commitment": self._commitment}])
        value = result.get("value") if isinstance(result, dict) else None
        try:
            return Hash.from_string(value["blockhash"]), int(value["lastValidBlockHeight"])  # type: ignore[index]
        except (KeyError, TypeError, ValueError) as error:
            raise RpcResponseError("getLatestBlockhash: malformed value") from error


def _base_result(survivors: Survivors) -> BatchResult:
    return BatchResult(
        SendOutcome.ALL_DROPPED,
        kept=tuple(survivors.live),
        dropped=dict(survivors.dropped),
        units=survivors.units,
        simulations=survivors.runs,
    )
