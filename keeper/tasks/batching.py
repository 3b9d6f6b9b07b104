"""Pack actions into transactions by measured size and compute budget.

One kind per transaction. ``order_for_sharing`` puts actions that share accounts next
to each other (cleans by payer, admin closes by payer, claims by market); each
transaction is filled greedily in that order, then topped up from a short look-ahead
with whatever still fits. Sizes include the two compute-budget instructions and every
signature (a claim adds one for its new run keypair, and one for the node authority when
it is not the fee payer); each finished batch is measured by serializing a real solders
transaction. Every action lands in exactly one batch; no account is the target of two.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

from keeper.program.instructions import (
    MaintenanceInstruction,
    compute_unit_limit,
    compute_unit_price,
)
from keeper.program.limits import MAX_COMPUTE_UNITS, MAX_TRANSACTION_BYTES, TxVersion
from keeper.tasks.builders import instruction_for, placeholder_run
from keeper.tasks.txsize import (
    KEY_BYTES,
    SIGNATURE_BYTES,
    Draft,
    instruction_bytes,
    measure,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from solders.instruction import Instruction
    from solders.pubkey import Pubkey

    from keeper.tasks.identity import ClaimIdentity
    from keeper.tasks.plan import Action

# Estimates for packing only; the sender sets the real limit from a simulation.
DEFAULT_COMPUTE_UNITS: Final[Mapping[MaintenanceInstruction, int]] = MappingProxyType(
    {
        MaintenanceInstruction.CLEAN: 25_000,  # loads the market (up to 10 KB)
        MaintenanceInstruction.CLEAN_ADMIN: 12_000,
        MaintenanceInstruction.QUIT_ADMIN: 12_000,
        MaintenanceInstruction.CLAIM: 60_000,  # creates the run, checks stake and NFT
    }
)
BUDGET_INSTRUCTION_UNITS: Final = 300  # SetComputeUnitLimit + SetComputeUnitPrice


@dataclass(frozen=True, slots=True)
class PackLimits:
    """Per-transaction limits. ``lookahead``: candidates scanned to top up a full transaction."""

    max_bytes: int = MAX_TRANSACTION_BYTES
    max_compute_units: int = MAX_COMPUTE_UNITS
    compute_units: Mapping[MaintenanceInstruction, int] = field(
        default_factory=lambda: dict(DEFAULT_COMPUTE_UNITS)
    )
    budget_units: int = BUDGET_INSTRUCTION_UNITS
    max_instructions: int | None = None
    lookahead: int = 16
    version: TxVersion = "legacy"  # as the sender compiles it: v0 costs 2 more bytes

    def units(self, kind: MaintenanceInstruction) -> int:
        return self.compute_units.get(kind, DEFAULT_COMPUTE_UNITS[kind])


@dataclass(frozen=True, slots=True)
class Batch:
    """The actions of one transaction, its measured size and signatures, estimated units."""

    kind: MaintenanceInstruction
    actions: tuple[Action, ...]
    size: int
    signatures: int
    compute_units: int

    @property
    def targets(self) -> frozenset[Pubkey]:
        return frozenset(action.account for action in self.actions)


@dataclass(frozen=True, slots=True)
class Signing:
    """Who signs and which program: everything but the actions that shapes a transaction."""

    program_id: Pubkey
    fee_payer: Pubkey
    authority: Pubkey
    claim_identity: ClaimIdentity | None = None

    def instruction(self, action: Action) -> Instruction:
        run = (
            placeholder_run(action.account) if action.kind is MaintenanceInstruction.CLAIM else None
        )
        return instruction_for(
            action,
            program_id=self.program_id,
            authority=self.authority,
            claim_identity=self.claim_identity,
            run=run,
        )


def budget_instructions(limits: PackLimits) -> list[Instruction]:
    """Stand-ins of the two compute-budget instructions: their size does not vary."""
    return [compute_unit_limit(limits.max_compute_units), compute_unit_price(0)]


def pack(  # noqa: PLR0913 - all keywords: the program, who signs, the limits
    actions: Iterable[Action],
    *,
    program_id: Pubkey,
    fee_payer: Pubkey,
    authority: Pubkey,
    claim_identity: ClaimIdentity | None = None,
    limits: PackLimits | None = None,
) -> list[Batch]:
    """Pack ``actions`` into transactions (see the module docstring); order: kinds as met."""
    signing = Signing(program_id, fee_payer, authority, claim_identity)
    limits = limits or PackLimits()
    batches: list[Batch] = []
    for kind, group in _by_kind(actions).items():
        batches.extend(_Packer(kind, signing, limits).pack(order_for_sharing(kind, group)))
    return batches


def _by_kind(actions: Iterable[Action]) -> dict[MaintenanceInstruction, list[Action]]:
    groups: dict[MaintenanceInstruction, list[Action]] = {}
    seen: set[Pubkey] = set()
    for action in actions:
        if action.account in seen:
            raise ValueError(f"{action.account} is the target of two actions")
        seen.add(action.account)
        groups.setdefault(action.kind, []).append(action)
    return groups


def _key(key: Pubkey | None) -> bytes:
    return b"" if key is None else bytes(key)


def order_for_sharing(kind: MaintenanceInstruction, actions: Sequence[Action]) -> list[Action]:
    """``actions`` ordered so that those sharing accounts sit together.

    Cleans: each payer's jobs together (its key is then written once per transaction),
    payers grouped by the market most of their jobs are in (so a transaction needs few
    market keys), then by market. Admin closes: by payer. Claims: by market.
    """
    if kind is MaintenanceInstruction.CLEAN:
        home = _home_markets(actions)
        return sorted(
            actions,
            key=lambda a: (home[a.payer], bytes(a.payer), _key(a.market), bytes(a.account)),
        )
    if kind is MaintenanceInstruction.CLAIM:
        return sorted(actions, key=lambda a: (_key(a.market), bytes(a.account)))
    return sorted(actions, key=lambda a: (bytes(a.payer), bytes(a.account)))


def _home_markets(actions: Sequence[Action]) -> dict[Pubkey, bytes]:
    """Each payer's most frequent market (ties: the smallest key), as sortable bytes."""
    counts: dict[Pubkey, Counter[bytes]] = {}
    for action in actions:
        counts.setdefault(action.payer, Counter())[_key(action.market)] += 1
    return {
        payer: min(markets, key=lambda market: (-markets[market], market))
        for payer, markets in counts.items()
    }


class _Packer:
    """Packs the actions of one kind, in order, into batches."""

    def __init__(self, kind: MaintenanceInstruction, signing: Signing, limits: PackLimits) -> None:
        self.kind = kind
        self.signing = signing
        self.limits = limits
        self.unit_cost = limits.units(kind)
        self.budget = budget_instructions(limits)

    def pack(self, ordered: Sequence[Action]) -> list[Batch]:
        built = [self.signing.instruction(action) for action in ordered]
        floor = min((self._least_bytes(ix) for ix in built), default=0)
        taken = [False] * len(ordered)
        batches: list[Batch] = []
        start = 0
        while start < len(ordered):
            indices = self._fill(built, taken, start, floor)
            batches.append(self._seal(ordered, built, indices, taken))
            while start < len(ordered) and taken[start]:
                start += 1
        return batches

    def _least_bytes(self, ix: Instruction) -> int:
        """The least one more action adds: its instruction and its own target key (for a
        claim also the new run's key and signature). Below that, stop looking."""
        run_signer = SIGNATURE_BYTES + KEY_BYTES if self.kind is MaintenanceInstruction.CLAIM else 0
        return instruction_bytes(ix) + KEY_BYTES + run_signer

    def _empty(self) -> Draft:
        draft = Draft(self.signing.fee_payer, self.limits.version)
        for ix in self.budget:
            draft.add(ix)
        return draft

    def _fill(
        self, built: Sequence[Instruction], taken: list[bool], start: int, floor: int
    ) -> list[int]:
        draft = self._empty()
        indices: list[int] = []
        index = start
        while index < len(built):
            if not taken[index]:
                if not self._fits(draft, len(indices), built[index]):
                    break
                self._take(draft, indices, taken, built, index)
            index += 1
        if not indices:
            raise ValueError(f"one {self.kind} instruction does not fit a transaction alone")
        # Top up: later actions may need fewer new keys than the next one in order.
        scanned = 0
        for later in range(index + 1, len(built)):
            full = self.limits.max_bytes - draft.size() < floor
            if full or scanned >= self.limits.lookahead or not self._has_room(len(indices)):
                break
            if taken[later]:
                continue
            scanned += 1
            if self._fits(draft, len(indices), built[later]):
                self._take(draft, indices, taken, built, later)
        return indices

    def _has_room(self, count: int) -> bool:
        """Room for one more instruction by count and compute units."""
        after = count + 1
        units = self.limits.budget_units + after * self.unit_cost
        capped = self.limits.max_instructions is not None and after > self.limits.max_instructions
        return not capped and units <= self.limits.max_compute_units

    def _fits(self, draft: Draft, count: int, ix: Instruction) -> bool:
        return self._has_room(count) and draft.size_with([ix]) <= self.limits.max_bytes

    @staticmethod
    def _take(
        draft: Draft,
        indices: list[int],
        taken: list[bool],
        built: Sequence[Instruction],
        index: int,
    ) -> None:
        draft.add(built[index])
        indices.append(index)
        taken[index] = True

    def _measure(self, built: Sequence[Instruction], indices: list[int]) -> tuple[int, int]:
        instructions = [*self.budget, *(built[i] for i in indices)]
        return measure(instructions, self.signing.fee_payer, self.limits.version)

    def _seal(
        self,
        ordered: Sequence[Action],
        built: Sequence[Instruction],
        indices: list[int],
        taken: list[bool],
    ) -> Batch:
        size, signatures = self._measure(built, indices)
        while size > self.limits.max_bytes and len(indices) > 1:
            # The counted size is exact (a test holds it to the measured one); should they
            # ever disagree, the measurement wins: hand the last action back.
            taken[indices.pop()] = False
            size, signatures = self._measure(built, indices)
        if size > self.limits.max_bytes:
            raise ValueError(f"one {self.kind} instruction does not fit a transaction alone")
        return Batch(
            kind=self.kind,
            actions=tuple(ordered[i] for i in indices),
            size=size,
            signatures=signatures,
            compute_units=self.limits.budget_units + len(indices) * self.unit_cost,
        )
