"""How many instructions a transaction can hold: the reference the packer is judged by.

``max_density`` packs a synthetic workload of one payer mix and reports the most
instructions one transaction took (measured, compute-budget instructions included).
``density_bound`` is an upper bound for an actual workload: the service reports the
density it reached (actions / transactions) against it.
"""

from __future__ import annotations

import hashlib
import math
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
    each other key costs 32 bytes at least once, each other signer 64. The transactions
    needed are at least the total over the capacity, at least the count over the most one
    transaction can hold, and at least what compute units and the instruction cap allow.
    Exact for one-mix workloads; for mixed ones it can be above any real packing.
    """
    limits = limits or PackLimits()
    by_kind: dict[MaintenanceInstruction, list[Instruction]] = {}
    for action in actions:
        by_kind.setdefault(action.kind, []).append(signing.instruction(action))
    transactions = sum(
        _least_transactions(kind, ixs, signing, limits) for kind, ixs in by_kind.items()
    )
    return len(actions) / transactions if transactions else 0.0


def _least_transactions(
    kind: MaintenanceInstruction,
    ixs: Sequence[Instruction],
    signing: Signing,
    limits: PackLimits,
) -> int:
    base = Draft(signing.fee_payer, limits.version)
    for ix in budget_instructions(limits):
        base.add(ix)
    keys = [{meta.pubkey for meta in ix.accounts} | {ix.program_id} for ix in ixs]
    signer_sets = [{meta.pubkey for meta in ix.accounts if meta.is_signer} for ix in ixs]
    fixed = set.intersection(*keys) | base.keys
    fixed_signers = set.intersection(*signer_sets) | base.signers
    capacity = limits.max_bytes - base.size() - KEY_BYTES * len(fixed - base.keys)
    capacity -= SIGNATURE_BYTES * len(fixed_signers - base.signers)
    uses: dict[Pubkey, int] = {}
    for ix_keys in keys:
        for key in ix_keys - fixed:
            uses[key] = uses.get(key, 0) + 1
    variable_signers = set().union(*signer_sets) - fixed_signers
    total = sum(instruction_bytes(ix) for ix in ixs) + KEY_BYTES * len(uses)
    total += SIGNATURE_BYTES * len(variable_signers)
    # What one instruction needs in its own transaction: its bytes, the keys only it uses.
    least_each = min(
        instruction_bytes(ix)
        + KEY_BYTES * sum(1 for key in ix_keys - fixed if uses[key] == 1)
        + SIGNATURE_BYTES * len(ix_signers & variable_signers)
        for ix, ix_keys, ix_signers in zip(ixs, keys, signer_sets, strict=True)
    )
    count = len(ixs)
    bounds = [
        math.ceil(total / capacity),
        math.ceil(count / max(1, capacity // least_each)),
        math.ceil(count * limits.units(kind) / (limits.max_compute_units - limits.budget_units)),
    ]
    if limits.max_instructions is not None:
        bounds.append(math.ceil(count / limits.max_instructions))
    return max(bounds)
