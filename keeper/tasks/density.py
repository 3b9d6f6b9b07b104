"""How many instructions a transaction can hold: the reference the packer is judged by.

``max_density`` packs a synthetic workload of one payer mix and reports the most
instructions one transaction took (measured, compute-budget instructions included).
``density_bound`` is an upper bound for an actual workload: the service reports the
density it reached (actions / transactions) against it.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Final

from solders.pubkey import Pubkey

from keeper.program.instructions import MaintenanceInstruction
from keeper.tasks.batching import PackLimits, Signing, budget_instructions, pack
from keeper.tasks.builders import REASONS_FOR
from keeper.tasks.identity import ClaimIdentity
from keeper.tasks.plan import Action
from keeper.tasks.txsize import KEY_BYTES, SIGNATURE_BYTES, Draft, instruction_bytes

if TYPE_CHECKING:
    from collections.abc import Sequence

    from solders.instruction import Instruction

_SYNTHETIC_ACTIONS: Final = 128  # more than any transaction holds


class PayerMix(StrEnum):
    SHARED = "shared"  # every instruction has the same payer (and market)
    DISTINCT = "distinct"  # every instruction has its own payer (one market)


def _synthetic_key(label: str, index: int) -> Pubkey:
    return Pubkey.from_bytes(hashlib.sha256(f"nosana-keeper {label} {index}".encode()).digest())


def synthetic_actions(kind: MaintenanceInstruction, mix: PayerMix, count: int) -> list[Action]:
    """``count`` actions of ``kind`` with one market and the payers of ``mix``."""
    reason = min(REASONS_FOR[kind])
    market = _synthetic_key("market", 0)
    return [
        Action(
            kind=kind,
            account=_synthetic_key("target", index),
            reason=reason,
            payer=_synthetic_key("payer", 0 if mix is PayerMix.SHARED else index),
            market=None if kind is MaintenanceInstruction.QUIT_ADMIN else market,
        )
        for index in range(count)
    ]


def max_density(
    kind: MaintenanceInstruction,
    mix: PayerMix,
    signing: Signing,
    limits: PackLimits | None = None,
) -> int:
    """The most ``kind`` instructions one transaction holds for a workload of ``mix``.

    A claim's payer is always the fee payer, so ``mix`` does not change it; without a
    claim identity, one whose authority is the fee payer is assumed (the densest case).
    """
    identity = signing.claim_identity or ClaimIdentity(
        authority=signing.fee_payer,
        stake=_synthetic_key("stake", 0),
        nft=_synthetic_key("nft", 0),
        metadata=_synthetic_key("metadata", 0),
    )
    actions = synthetic_actions(kind, mix, _SYNTHETIC_ACTIONS)
    if kind is MaintenanceInstruction.CLAIM:
        actions = [_with_payer(action, signing.fee_payer) for action in actions]
    batches = pack(
        actions,
        program_id=signing.program_id,
        fee_payer=signing.fee_payer,
        authority=signing.authority,
        claim_identity=identity,
        limits=limits,
    )
    return max(len(batch.actions) for batch in batches)


def _with_payer(action: Action, payer: Pubkey) -> Action:
    return Action(action.kind, action.account, action.reason, payer, action.market, action.job)


def density_bound(
    actions: Sequence[Action], signing: Signing, limits: PackLimits | None = None
) -> float:
    """An upper bound on actions per transaction for this workload (0.0 when empty).

    Per kind, a transaction carries fixed bytes (signatures, header, blockhash, the fee
    payer, programs, compute budget, and the keys every instruction of the kind shares);
    each other key costs 32 bytes at least once, each other signer 64, and every
    transaction holds at least one key of each shared role (a clean's payer and market).
    The transactions needed are at least those bytes over the capacity, at least the count
    over the most one transaction can hold, and at least what compute units and the
    instruction cap allow. Exact for one-mix workloads; for mixed ones it can be above
    what any packing reaches.
    """
    limits = limits or PackLimits()
    by_kind: dict[MaintenanceInstruction, list[Instruction]] = {}
    for action in actions:
        by_kind.setdefault(action.kind, []).append(signing.instruction(action))
    transactions = sum(
        _least_transactions(kind, ixs, signing, limits) for kind, ixs in by_kind.items()
    )
    return len(actions) / transactions if transactions else 0.0


@dataclass(frozen=True, slots=True)
class _Shape:
    """What a workload of one kind needs, in bytes (see ``density_bound``)."""

    capacity: int  # per transaction, after what every transaction of the kind carries
    total: int  # instruction bytes + every other key once + every other signature once
    least_each: int  # the least one instruction adds: its bytes and what only it uses
    roles: tuple[int, ...]  # distinct keys of each shared role (disjoint roles), ascending


def _shape(ixs: Sequence[Instruction], signing: Signing, limits: PackLimits) -> _Shape:
    base = Draft(signing.fee_payer, limits.version)
    for ix in budget_instructions(limits):
        base.add(ix)
    keys = [{meta.pubkey for meta in ix.accounts} | {ix.program_id} for ix in ixs]
    signers = [{meta.pubkey for meta in ix.accounts if meta.is_signer} for ix in ixs]
    fixed = set.intersection(*keys) | base.keys
    fixed_signers = set.intersection(*signers) | base.signers
    capacity = limits.max_bytes - base.size() - KEY_BYTES * len(fixed - base.keys)
    capacity -= SIGNATURE_BYTES * len(fixed_signers - base.signers)
    uses = Counter(key for ix_keys in keys for key in ix_keys - fixed)
    signer_uses = Counter(key for ix_signers in signers for key in ix_signers - fixed_signers)
    total = sum(instruction_bytes(ix) for ix in ixs) + KEY_BYTES * len(uses)
    total += SIGNATURE_BYTES * len(signer_uses)
    least_each = min(
        instruction_bytes(ix)
        + KEY_BYTES * sum(1 for key in ix_keys - fixed if uses[key] == 1)
        + SIGNATURE_BYTES * sum(1 for key in ix_signers - fixed_signers if signer_uses[key] == 1)
        for ix, ix_keys, ix_signers in zip(ixs, keys, signers, strict=True)
    )
    return _Shape(capacity, total, least_each, _shared_roles(ixs, fixed, uses))


def _shared_roles(
    ixs: Sequence[Instruction], fixed: set[Pubkey], uses: Counter[Pubkey]
) -> tuple[int, ...]:
    """Account positions whose keys vary but are each used twice or more (so no
    instruction pays for them alone), with pairwise disjoint key sets: each costs every
    transaction at least one key."""
    counted: set[Pubkey] = set()
    roles: list[int] = []
    for position in range(len(ixs[0].accounts)):
        role = {ix.accounts[position].pubkey for ix in ixs} - fixed
        if role and all(uses[key] > 1 for key in role) and not role & counted:
            counted |= role
            roles.append(len(role))
    return tuple(sorted(roles))


def _least_transactions(
    kind: MaintenanceInstruction,
    ixs: Sequence[Instruction],
    signing: Signing,
    limits: PackLimits,
) -> int:
    shape = _shape(ixs, signing, limits)
    count = len(ixs)
    # With T transactions, a role of D keys costs at least max(D, T) keys in all: for the
    # j roles with the fewest keys, T * capacity >= total + 32 * sum(T - D_i).
    by_bytes = max(
        math.ceil(
            (shape.total - KEY_BYTES * sum(shape.roles[:j])) / (shape.capacity - KEY_BYTES * j)
        )
        for j in range(len(shape.roles) + 1)
    )
    per_transaction = (shape.capacity - KEY_BYTES * len(shape.roles)) // shape.least_each
    bounds = [
        by_bytes,
        math.ceil(count / max(1, per_transaction)),
        math.ceil(count * limits.units(kind) / (limits.max_compute_units - limits.budget_units)),
    ]
    if limits.max_instructions is not None:
        bounds.append(math.ceil(count / limits.max_instructions))
    return max(bounds)
