"""Executes transactions against the ledger the way a cluster does.

``run`` checks a decoded transaction (blockhash, status cache, compute budget, fee payer,
programs) and executes every instruction over working copies of the accounts. It never
touches the ledger: ``commit`` applies an ``Outcome`` (fee and effects, or the fee alone
when an instruction failed) and records the transaction. Rejections before execution
raise ``TransactionRejected``; nothing is charged for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from keeper.localnet.compute_budget import (
    BUILTIN_INSTRUCTION_UNITS,
    COMPUTE_BUDGET_PROGRAM,
    ComputeBudget,
    parse_compute_budget,
)
from keeper.localnet.effects import check_effects, snapshot
from keeper.localnet.ledger import TransactionRecord, rent_exempt_minimum
from keeper.localnet.model import (
    Account,
    AccountRef,
    InstructionContext,
    Program,
    ProgramFailure,
)
from keeper.localnet.system_program import SYSTEM_PROGRAM, SystemProgram
from keeper.localnet.transaction_view import CompiledIx, TransactionView, view_transaction
from keeper.localnet.tx_errors import (
    ACCOUNT_NOT_FOUND,
    ALREADY_PROCESSED,
    BLOCKHASH_NOT_FOUND,
    INSUFFICIENT_FUNDS_FOR_FEE,
    PROGRAM_ACCOUNT_NOT_FOUND,
    TransactionErrorJson,
    TransactionRejected,
    describe_instruction_error,
    instruction_error,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from solders.pubkey import Pubkey
    from solders.transaction import VersionedTransaction

    from keeper.localnet.ledger import Ledger

# What invoking a non-builtin program costs on top of what it reports (entrypoint,
# account deserialization): keeps simulated units close to a real node's.
DEFAULT_BASE_INVOCATION_UNITS: Final = 1_000
_BUILTINS: Final = frozenset({SYSTEM_PROGRAM, COMPUTE_BUDGET_PROGRAM})

Working = dict["Pubkey", Account | None]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What executing a transaction did (or, for a simulation, would do)."""

    view: TransactionView
    err: TransactionErrorJson | None
    logs: tuple[str, ...]
    units_consumed: int
    fee: int
    budget: ComputeBudget
    writes: dict[Pubkey, Account | None]  # None: the account is closed
    pre_balances: tuple[int, ...]
    post_balances: tuple[int, ...]


class _InstructionFailedError(Exception):
    def __init__(self, error: int | str, units: int) -> None:
        super().__init__(error)
        self.error = error
        self.units = units


class Runtime:
    """Programs by id, and transaction processing over a ledger."""

    def __init__(
        self,
        ledger: Ledger,
        programs: Iterable[Program] = (),
        *,
        base_invocation_units: int = DEFAULT_BASE_INVOCATION_UNITS,
    ) -> None:
        self.ledger = ledger
        self.base_invocation_units = base_invocation_units
        self.programs: dict[Pubkey, Program] = {SYSTEM_PROGRAM: SystemProgram()}
        for program in programs:
            self.register(program)

    def register(self, program: Program) -> None:
        self.programs[program.program_id] = program
        self.ledger.add_program(program.program_id, builtin=program.program_id in _BUILTINS)

    # -- checks ---------------------------------------------------------------------------

    def run(
        self,
        transaction: VersionedTransaction,
        *,
        check_blockhash: bool = True,
        check_processed: bool = True,
    ) -> Outcome:
        """Check and execute ``transaction`` on working copies; the ledger is unchanged."""
        view = view_transaction(transaction)
        if check_blockhash and not self.ledger.clock.is_blockhash_valid(view.recent_blockhash):
            raise TransactionRejected(BLOCKHASH_NOT_FOUND)
        if check_processed and self.ledger.has_processed(view.signature):
            raise TransactionRejected(ALREADY_PROCESSED)
        budget = parse_compute_budget([(ix.program_id, ix.data) for ix in view.instructions])
        fee = budget.fee(view.num_signatures)
        payer = self.ledger.get(view.fee_payer)
        if payer is None:
            raise TransactionRejected(ACCOUNT_NOT_FOUND)
        if payer.lamports < fee:
            raise TransactionRejected(INSUFFICIENT_FUNDS_FOR_FEE)
        if any(ix.program_id not in self._known_programs for ix in view.instructions):
            raise TransactionRejected(PROGRAM_ACCOUNT_NOT_FOUND)
        return self._execute(view, budget, fee)

    @property
    def _known_programs(self) -> set[Pubkey]:
        return {*self.programs, COMPUTE_BUDGET_PROGRAM}

    # -- execution ------------------------------------------------------------------------

    def _execute(self, view: TransactionView, budget: ComputeBudget, fee: int) -> Outcome:
        keys = view.account_keys
        working: Working = {key: self.ledger.get(key) for key in keys}
        pre_balances = tuple(_balance(working[key]) for key in keys)
        payer = working[view.fee_payer]
        assert payer is not None  # checked by run()
        payer.lamports -= fee
        fee_only: dict[Pubkey, Account | None] = {view.fee_payer: snapshot(payer)}
        logs: list[str] = []
        consumed = 0
        err: TransactionErrorJson | None = None
        for index, ix in enumerate(view.instructions):
            remaining = budget.unit_limit - consumed
            try:
                consumed += self._invoke(view, ix, working, logs, remaining)
            except _InstructionFailedError as failure:
                consumed += failure.units
                err = instruction_error(index, failure.error)
                break
        if err is None:
            writes = {
                key: _stored(working[key])
                for key, writable in zip(keys, view.is_writable, strict=True)
                if writable
            }
        else:
            writes = {key: _stored(account) for key, account in fee_only.items()}
        post_balances = tuple(
            _balance(writes[key]) if key in writes else pre
            for key, pre in zip(keys, pre_balances, strict=True)
        )
        return Outcome(
            view=view,
            err=err,
            logs=tuple(logs),
            units_consumed=consumed,
            fee=fee,
            budget=budget,
            writes=writes,
            pre_balances=pre_balances,
            post_balances=post_balances,
        )

    def _invoke(
        self,
        view: TransactionView,
        ix: CompiledIx,
        working: Working,
        logs: list[str],
        remaining: int,
    ) -> int:
        """Run one instruction; returns the units it consumed or raises on failure."""
        program_id = ix.program_id
        logs.append(f"Program {program_id} invoke [1]")
        if program_id == COMPUTE_BUDGET_PROGRAM:  # parsed already; costs its fixed units
            return _finish_builtin(program_id, BUILTIN_INSTRUCTION_UNITS, remaining, logs)
        refs = [
            AccountRef(
                view.account_keys[i],
                view.is_signer[i],
                view.is_writable[i],
                working[view.account_keys[i]],
            )
            for i in ix.accounts
        ]
        before = {ref.key: snapshot(ref.account) for ref in refs}
        ctx = InstructionContext(
            program_id=program_id,
            data=ix.data,
            accounts=refs,
            unix_timestamp=self.ledger.clock.unix_timestamp,
            slot=self.ledger.clock.slot,
            rent_exempt_minimum=rent_exempt_minimum,
        )
        failure: ProgramFailure | None = None
        try:
            self.programs[program_id].execute(ctx)
        except ProgramFailure as raised:
            failure = raised
        logs.extend(ctx.logs)
        _write_back(refs, working)
        if program_id in _BUILTINS:
            if failure is not None:
                _fail(program_id, failure, logs, units=min(ctx.compute_units, remaining))
            return _finish_builtin(program_id, ctx.compute_units, remaining, logs)
        units = ctx.compute_units + self.base_invocation_units
        if units > remaining:
            logs.append(f"Program {program_id} consumed {remaining} of {remaining} compute units")
            logs.append(f"Program {program_id} failed: exceeded CUs meter at BPF instruction")
            raise _InstructionFailedError("ComputationalBudgetExceeded", remaining)
        if failure is None:
            violation = check_effects(program_id, refs, before, working)
            if violation is not None:
                failure = ProgramFailure(violation, builtin=violation)
        if failure is not None and failure.custom is not None:
            _log_anchor_error(failure, ctx.logs, logs)
        logs.append(f"Program {program_id} consumed {units} of {remaining} compute units")
        if failure is not None:
            _fail(program_id, failure, logs, units=units)
        logs.append(f"Program {program_id} success")
        return units

    # -- commit ---------------------------------------------------------------------------

    def commit(self, outcome: Outcome) -> TransactionRecord:
        """Apply a landed transaction's writes and record it (successful or failed)."""
        for key, account in outcome.writes.items():
            if account is None:
                self.ledger.delete(key)
            else:
                self.ledger.put(key, account)
        clock = self.ledger.clock
        record = TransactionRecord(
            signature=outcome.view.signature,
            transaction=outcome.view.transaction,
            slot=clock.slot,
            block_time=clock.unix_timestamp,
            err=outcome.err,
            fee=outcome.fee,
            logs=outcome.logs,
            units_consumed=outcome.units_consumed,
            pre_balances=outcome.pre_balances,
            post_balances=outcome.post_balances,
        )
        self.ledger.record(record)
        return record


def _finish_builtin(program_id: Pubkey, units: int, remaining: int, logs: list[str]) -> int:
    if units > remaining:
        logs.append(f"Program {program_id} failed: Computational budget exceeded")
        raise _InstructionFailedError("ComputationalBudgetExceeded", remaining)
    logs.append(f"Program {program_id} success")
    return units


def _fail(program_id: Pubkey, failure: ProgramFailure, logs: list[str], *, units: int) -> None:
    error: int | str = (
        failure.custom if failure.custom is not None else failure.builtin or failure.name
    )
    logs.append(f"Program {program_id} failed: {describe_instruction_error(error)}")
    raise _InstructionFailedError(error, units)


def _log_anchor_error(failure: ProgramFailure, program_logs: list[str], logs: list[str]) -> None:
    """Anchor logs every error it returns; add the line if the program model did not."""
    if any("Error Code: " in line for line in program_logs):
        return
    logs.append(
        f"Program log: AnchorError occurred. Error Code: {failure.name}. "
        f"Error Number: {failure.custom}. Error Message: {failure.name}."
    )


def _write_back(refs: list[AccountRef], working: Working) -> None:
    """Keep what the program did; it may have replaced an AccountRef's account (create,
    close) or changed it in place (then ``working`` already holds the change)."""
    originals = {ref.key: working[ref.key] for ref in refs}
    for ref in refs:
        if ref.account is not originals[ref.key]:
            working[ref.key] = ref.account


def _balance(account: Account | None) -> int:
    return 0 if account is None else account.lamports


def _stored(account: Account | None) -> Account | None:
    """What the ledger keeps: accounts left with no lamports are gone."""
    return None if account is None or account.lamports == 0 else account
