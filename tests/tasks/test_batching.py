"""Packing: every transaction fits, nothing is lost or doubled, shared keys are reused."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from task_factories import IDENTITY, KEEPER, MARKET, PROGRAM, action, key, workloads

from keeper.program.instructions import MaintenanceInstruction
from keeper.program.limits import MAX_TRANSACTION_BYTES
from keeper.tasks.batching import PackLimits, Signing, budget_instructions, pack
from keeper.tasks.builders import REASONS_FOR, instruction_for, placeholder_run
from keeper.tasks.identity import ClaimIdentity
from keeper.tasks.plan import Action
from keeper.tasks.txsize import measure

SELF_NODE = ClaimIdentity(authority=KEEPER, stake=key("s"), nft=key("n"), metadata=key("m"))


def _pack(actions: list[Action], limits: PackLimits | None = None, identity=IDENTITY):
    return pack(
        actions,
        program_id=PROGRAM,
        fee_payer=KEEPER,
        authority=KEEPER,
        claim_identity=identity,
        limits=limits,
    )


def _measure_independently(batch, limits: PackLimits) -> tuple[int, int]:
    ixs = [
        instruction_for(
            a,
            program_id=PROGRAM,
            authority=KEEPER,
            claim_identity=IDENTITY,
            run=placeholder_run(a.account),
        )
        for a in batch.actions
    ]
    return measure([*budget_instructions(limits), *ixs], KEEPER, limits.version)


@settings(max_examples=60, deadline=None)
@given(
    workloads(),
    st.sampled_from([None, 5, 17]),
    st.sampled_from([1_400_000, 200_000]),
    st.sampled_from(["legacy", "v0"]),
)
def test_every_transaction_fits_and_nothing_is_lost(actions, cap, units, version) -> None:
    limits = PackLimits(max_instructions=cap, max_compute_units=units, version=version)
    batches = _pack(actions, limits)
    packed = [a for b in batches for a in b.actions]
    assert Counter(packed) == Counter(actions)  # no action lost, none doubled
    seen: set[object] = set()
    for batch in batches:
        assert batch.actions
        assert {a.kind for a in batch.actions} == {batch.kind}
        assert batch.size <= MAX_TRANSACTION_BYTES
        assert (batch.size, batch.signatures) == _measure_independently(batch, limits)
        assert batch.compute_units <= units
        assert cap is None or len(batch.actions) <= cap
        assert not batch.targets & seen  # no account is a target in two batches
        seen |= batch.targets


def test_duplicate_target_is_refused() -> None:
    twice = action(MaintenanceInstruction.CLEAN, 1, 1, 1)
    with pytest.raises(ValueError, match="two actions"):
        _pack([twice, twice])


def test_empty() -> None:
    assert _pack([]) == []


def test_claim_signatures_new_run_and_node_authority() -> None:
    claims = [action(MaintenanceInstruction.CLAIM, i, 0, 0) for i in range(3)]
    (apart,) = _pack(claims, identity=IDENTITY)  # node authority is not the fee payer
    assert apart.signatures == 1 + 1 + 3
    (same,) = _pack(claims, identity=SELF_NODE)
    assert same.signatures == 1 + 3
    assert apart.size - same.size == 64 + 32  # one more signature and key


def test_compute_units_bind() -> None:
    cleans = [action(MaintenanceInstruction.CLEAN, i, 0, 0) for i in range(10)]
    limits = PackLimits(max_compute_units=300 + 3 * 25_000)
    batches = _pack(cleans, limits)
    assert [len(b.actions) for b in batches] == [3, 3, 3, 1]
    assert all(b.compute_units <= limits.max_compute_units for b in batches)


def test_an_instruction_too_big_for_any_transaction_is_an_error() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        _pack([action(MaintenanceInstruction.CLEAN, 1, 1, 1)], PackLimits(max_bytes=300))


def test_cleans_of_one_payer_share_transactions() -> None:
    # Interleaved input: two payers, same market. Sorted, each payer's jobs sit together.
    cleans = [action(MaintenanceInstruction.CLEAN, i, i % 2, 0) for i in range(40)]
    batches = _pack(cleans)
    assert [len(b.actions) for b in batches] == [20, 20]
    for batch in batches:
        assert len({a.payer for a in batch.actions}) == 1
        assert {a.market for a in batch.actions} == {key("market 0")}


def _clean(target: str, payer, market) -> Action:
    return Action(
        MaintenanceInstruction.CLEAN,
        key(target),
        min(REASONS_FOR[MaintenanceInstruction.CLEAN]),
        payer,
        market,
    )


def test_top_up_takes_a_later_action_that_needs_fewer_keys() -> None:
    first_market, second_market = sorted([key("market a"), key("market b")], key=bytes)
    y_payer, z_payer = sorted([key("payer y"), key("payer z")], key=bytes)
    # Home market first_market: 10 payers with one job, one payer with two: 12 jobs leave
    # exactly 78 bytes, room for a new payer but not for a new payer and a new market.
    cleans = [_clean(f"a{i}", key(f"single {i}"), first_market) for i in range(10)]
    cleans += [_clean(f"d{i}", key("double"), first_market) for i in range(2)]
    # Home second_market: y comes first in order and needs both keys; z's job in
    # first_market comes later and needs only its payer.
    cleans += [_clean(f"y{i}", y_payer, second_market) for i in range(2)]
    cleans += [_clean(f"z{i}", z_payer, second_market) for i in range(2)]
    z_in_first = _clean("z in first", z_payer, first_market)
    cleans.append(z_in_first)
    first = _pack(cleans)[0]
    assert len(first.actions) == 13
    assert z_in_first in first.actions
    assert first.size == MAX_TRANSACTION_BYTES
    assert len(_pack(cleans, PackLimits(lookahead=0))[0].actions) == 12


def test_signing_builds_claims_with_a_placeholder_run() -> None:
    signing = Signing(PROGRAM, KEEPER, KEEPER, IDENTITY)
    claim = action(MaintenanceInstruction.CLAIM, 1, 0, 0)
    ix = signing.instruction(claim)
    assert ix.accounts[1].pubkey == placeholder_run(claim.account)
    assert ix.accounts[2].pubkey == key("market 0") != MARKET
