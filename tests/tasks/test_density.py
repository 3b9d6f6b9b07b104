"""Density: the measured maxima per payer mix, and the packer reaching them."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from task_factories import IDENTITY, KEEPER, PROGRAM, action, workloads

from keeper.program.instructions import MaintenanceInstruction
from keeper.tasks.batching import PackLimits, Signing, pack
from keeper.tasks.density import PayerMix, density_bound, max_density, synthetic_actions
from keeper.tasks.identity import ClaimIdentity

SIGNING = Signing(PROGRAM, KEEPER, KEEPER, IDENTITY)
K = MaintenanceInstruction

# Measured with both compute-budget instructions (they take 52 bytes: 20 of instructions,
# 32 for the program's key) and no lookup table; the node authority is not the fee payer.
# Without them: 21 / 13 cleans, 22 / 13 admin closes, 5 claims (6 when the node is the fee
# payer) — the figures issue 6 quotes.
EXPECTED = {
    (K.CLEAN, PayerMix.SHARED): 20,
    (K.CLEAN, PayerMix.DISTINCT): 12,
    (K.CLEAN_ADMIN, PayerMix.SHARED): 21,
    (K.CLEAN_ADMIN, PayerMix.DISTINCT): 13,
    (K.QUIT_ADMIN, PayerMix.SHARED): 21,
    (K.QUIT_ADMIN, PayerMix.DISTINCT): 13,
    (K.CLAIM, PayerMix.SHARED): 5,
    (K.CLAIM, PayerMix.DISTINCT): 5,
}


@pytest.mark.parametrize(("kind", "mix"), list(EXPECTED))
def test_max_density(kind: MaintenanceInstruction, mix: PayerMix) -> None:
    assert max_density(kind, mix, SIGNING) == EXPECTED[kind, mix]


def test_claim_density_when_the_node_is_the_fee_payer() -> None:
    self_node = ClaimIdentity(KEEPER, IDENTITY.stake, IDENTITY.nft, IDENTITY.metadata)
    signing = Signing(PROGRAM, KEEPER, KEEPER, self_node)
    assert max_density(K.CLAIM, PayerMix.SHARED, signing) == 5  # 1,118 bytes: a 6th needs 148


def test_a_lower_cap_lowers_the_maximum() -> None:
    assert max_density(K.CLEAN, PayerMix.SHARED, SIGNING, PackLimits(max_instructions=7)) == 7


def _claims_paid_by_keeper(actions):
    return [
        a if a.kind is not K.CLAIM else type(a)(a.kind, a.account, a.reason, KEEPER, a.market)
        for a in actions
    ]


@settings(deadline=None)
@given(st.sampled_from(list(EXPECTED)), st.integers(1, 90))
def test_homogeneous_workloads_pack_at_the_maximum(case, count) -> None:
    kind, mix = case
    actions = _claims_paid_by_keeper(synthetic_actions(kind, mix, count))
    batches = pack(
        actions, program_id=PROGRAM, fee_payer=KEEPER, authority=KEEPER, claim_identity=IDENTITY
    )
    best = EXPECTED[kind, mix]
    assert [len(b.actions) for b in batches[:-1]] == [best] * (len(batches) - 1)
    assert len(batches) == -(-count // best)
    assert density_bound(actions, SIGNING) == pytest.approx(count / len(batches))


@settings(max_examples=60, deadline=None)
@given(workloads())
def test_density_bound_is_never_beaten(actions) -> None:
    batches = pack(
        actions, program_id=PROGRAM, fee_payer=KEEPER, authority=KEEPER, claim_identity=IDENTITY
    )
    bound = density_bound(actions, SIGNING)
    if not actions:
        assert bound == 0.0
        return
    assert len(actions) / len(batches) <= bound + 1e-9


def test_v0_messages_lose_an_instruction_where_legacy_is_full_to_the_byte() -> None:
    v0 = PackLimits(version="v0")
    assert max_density(K.CLEAN_ADMIN, PayerMix.DISTINCT, SIGNING, v0) == 12  # legacy: 1,232 bytes
    assert max_density(K.CLEAN, PayerMix.SHARED, SIGNING, v0) == 20


def test_bound_counts_one_payer_and_one_market_per_transaction() -> None:
    # Payers shared but varied: every transaction still needs one payer key besides the
    # market, so at most 20 cleans, not the 21 that 46 bytes per clean alone would allow.
    actions = [action(K.CLEAN, i, i % 2, 0) for i in range(200)]
    assert density_bound(actions, SIGNING) == pytest.approx(20.0)
    batches = pack(actions, program_id=PROGRAM, fee_payer=KEEPER, authority=KEEPER)
    assert len(batches) == 10
    # Two markets as well: still one of each per transaction.
    mixed = [action(K.CLEAN, i, i % 3, i % 2) for i in range(200)]
    assert density_bound(mixed, SIGNING) == pytest.approx(20.0)
