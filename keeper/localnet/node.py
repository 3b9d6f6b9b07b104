"""What an RPC node does with transactions: verify, preflight, land (or drop), simulate.

Between the JSON-RPC layer (encodings, error codes) and the runtime (execution): the
place where the send-path faults (dropped transactions, a competing keeper) act.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from solders.message import from_bytes_versioned

from keeper.localnet.compute_budget import parse_compute_budget
from keeper.localnet.lifecycle import JobLifecycle
from keeper.localnet.pubsub import Subscriptions
from keeper.localnet.stats import NodeStats
from keeper.localnet.transaction_view import decode_transaction, view_transaction
from keeper.localnet.tx_errors import TransactionErrorJson, TransactionRejected

if TYPE_CHECKING:
    from solders.pubkey import Pubkey
    from solders.signature import Signature
    from solders.transaction import VersionedTransaction

    from keeper.localnet.clock import BlockhashInfo
    from keeper.localnet.faults import Faults
    from keeper.localnet.ledger import Ledger
    from keeper.localnet.model import Account
    from keeper.localnet.runtime import Outcome, Runtime


API_VERSION: Final = "2.1.21"


class SignatureVerificationError(ValueError):
    """A signature does not match its signer and the message."""


@dataclass(frozen=True, slots=True)
class Simulation:
    err: TransactionErrorJson | None
    logs: tuple[str, ...]
    units_consumed: int
    fee: int = 0
    replacement_blockhash: BlockhashInfo | None = None
    accounts_after: dict[Pubkey, Account | None] = field(default_factory=dict)


class PreflightError(Exception):
    """sendTransaction's preflight simulation failed (JSON-RPC -32002)."""

    def __init__(self, simulation: Simulation) -> None:
        super().__init__(simulation.err)
        self.simulation = simulation


class Node:
    """The RPC node's transaction handling over one ledger and runtime."""

    def __init__(
        self,
        ledger: Ledger,
        runtime: Runtime,
        faults: Faults,
        *,
        competitor_program: Pubkey | None = None,
        prioritization_fees: list[int] | None = None,
        jobs_program: Pubkey | None = None,
    ) -> None:
        self.ledger = ledger
        self.runtime = runtime
        self.faults = faults
        self.stats = NodeStats()
        self.pubsub = Subscriptions(ledger, self.stats)
        # The Nosana Jobs program whose jobs the lifecycle control methods move along.
        self.lifecycle = None if jobs_program is None else JobLifecycle(ledger, jobs_program)
        # The program whose accounts a faulted "competitor" keeper closes (the jobs program).
        self.competitor_program = competitor_program
        self.prioritization_fees: list[int] = list(prioritization_fees or [])
        # Signatures accepted under ``land_delay_ms`` that have not landed yet.
        self.landing: set[Signature] = set()

    def context(self) -> dict[str, object]:
        """The ``context`` of an RPC answer: the slot it was read at."""
        return {"slot": self.ledger.clock.slot, "apiVersion": API_VERSION}

    def contextual(self, value: object) -> dict[str, object]:
        return {"context": self.context(), "value": value}

    def decode(self, raw: bytes, *, verify_signatures: bool) -> VersionedTransaction:
        transaction = decode_transaction(raw)
        if verify_signatures and not all(transaction.verify_with_results()):
            raise SignatureVerificationError("Transaction signature verification failure")
        return transaction

    def send_transaction(self, raw: bytes, *, skip_preflight: bool = False) -> Signature:
        """Accept a transaction: it lands now, or never if dropped or invalid."""
        transaction = self.decode(raw, verify_signatures=True)
        self._let_competitor_strike(transaction)
        outcome: Outcome | None = None
        try:
            outcome = self.runtime.run(transaction)
        except TransactionRejected as rejected:
            if not skip_preflight:
                raise PreflightError(Simulation(rejected.err, (), 0)) from rejected
        if outcome is not None and outcome.err is not None and not skip_preflight:
            raise PreflightError(_simulation(outcome))
        if self.faults.drops_transaction() or outcome is None:
            return transaction.signatures[0]
        delay = self.faults.land_delay_seconds
        if delay > 0:
            self._land_later(transaction, delay)
        else:
            self.runtime.commit(outcome)
        return transaction.signatures[0]

    def _land_later(self, transaction: VersionedTransaction, delay: float) -> None:
        """Land ``transaction`` after ``delay`` seconds, run against the ledger as it is then
        (needs the chain's running loop: sends come through the server)."""
        signature = transaction.signatures[0]
        if signature in self.landing:
            return  # a re-send of what is already on its way
        self.landing.add(signature)

        def land() -> None:
            self.landing.discard(signature)
            try:
                outcome = self.runtime.run(transaction)
            except TransactionRejected:
                return  # its blockhash expired meanwhile, or it landed already: never lands
            self.runtime.commit(outcome)

        asyncio.get_running_loop().call_later(delay, land)

    def _let_competitor_strike(self, transaction: VersionedTransaction) -> None:
        """Another keeper closes this send's target first (when the fault is on)."""
        if self.competitor_program is None:
            return
        try:
            view = view_transaction(transaction)
        except TransactionRejected:
            return
        for ix in view.instructions:
            if ix.program_id != self.competitor_program:
                continue
            for index in ix.accounts:
                if view.is_writable[index] and index != 0:
                    if self.faults.competitor_strikes():
                        self.ledger.delete(view.account_keys[index])
                    return
            return

    def simulate(
        self,
        raw: bytes,
        *,
        sig_verify: bool = False,
        replace_recent_blockhash: bool = False,
        addresses: tuple[Pubkey, ...] = (),
    ) -> Simulation:
        transaction = self.decode(raw, verify_signatures=sig_verify)
        replacement = self.ledger.clock.latest_blockhash if replace_recent_blockhash else None
        try:
            outcome = self.runtime.run(
                transaction, check_blockhash=not replace_recent_blockhash, check_processed=False
            )
        except TransactionRejected as rejected:
            return Simulation(rejected.err, (), 0, replacement_blockhash=replacement)
        after = {key: outcome.writes.get(key, self.ledger.get(key)) for key in addresses}
        return _simulation(outcome, replacement, after)

    def fee_for_message(self, message_bytes: bytes) -> int | None:
        """The fee a message would pay, or None when its blockhash is not valid (as nodes)."""
        message = from_bytes_versioned(message_bytes)
        if not self.ledger.clock.is_blockhash_valid(message.recent_blockhash):
            return None
        keys = message.account_keys
        try:
            budget = parse_compute_budget(
                [(keys[ix.program_id_index], bytes(ix.data)) for ix in message.instructions]
            )
        except (TransactionRejected, IndexError):
            return None
        return budget.fee(message.header.num_required_signatures)


def _simulation(
    outcome: Outcome,
    replacement: BlockhashInfo | None = None,
    after: dict[Pubkey, Account | None] | None = None,
) -> Simulation:
    return Simulation(
        err=outcome.err,
        logs=outcome.logs,
        units_consumed=outcome.units_consumed,
        fee=outcome.fee,
        replacement_blockhash=replacement,
        accounts_after=after or {},
    )
