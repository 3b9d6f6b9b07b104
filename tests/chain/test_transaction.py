"""Fee arithmetic, unit limits, and building the wire bytes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from solders.hash import Hash
from solders.keypair import Keypair
from solders.transaction import VersionedTransaction

from keeper.chain.transaction import (
    MAX_COMPUTE_UNITS,
    compile_message,
    fee_lamports,
    highest_price_within,
    sign,
    signer_keys,
    unit_limit_for,
    unsigned_bytes,
)
from keeper.program.instructions import CleanAdminAccounts, clean_admin

PAYER = Keypair.from_seed(bytes([1] * 32))


def test_fee_is_base_plus_rounded_up_priority() -> None:
    assert fee_lamports(1, 0, 200_000) == 5_000
    assert fee_lamports(2, 1_000, 200_000) == 10_200
    assert fee_lamports(1, 1, 1) == 5_001  # a fraction of a lamport is a lamport


@given(
    max_fee=st.integers(0, 10**9),
    signatures=st.integers(1, 4),
    limit=st.integers(1, MAX_COMPUTE_UNITS),
)
def test_highest_price_within_is_the_highest_that_fits(
    max_fee: int, signatures: int, limit: int
) -> None:
    price = highest_price_within(max_fee, signatures, limit)
    if price is None:
        assert fee_lamports(signatures, 0, limit) > max_fee
    else:
        assert fee_lamports(signatures, price, limit) <= max_fee
        assert fee_lamports(signatures, price + 1, limit) > max_fee or price + 1 == 0


@pytest.mark.parametrize(
    ("units", "margin", "limit"),
    [
        (10_000, 1.2, 12_000),
        (1_300_000, 1.2, MAX_COMPUTE_UNITS),
        (None, 1.2, MAX_COMPUTE_UNITS),
        (0, 1.5, 1),
    ],
)
def test_unit_limit(units: int | None, margin: float, limit: int) -> None:
    assert unit_limit_for(units, margin) == limit


@pytest.mark.parametrize("version", ["v0", "legacy"])
def test_compile_prefixes_the_budget_and_signs_in_order(version: str) -> None:
    ix = clean_admin(
        CleanAdminAccounts(
            job=Keypair().pubkey(), payer=Keypair().pubkey(), authority=PAYER.pubkey()
        )
    )
    message = compile_message(
        [ix],
        payer=PAYER.pubkey(),
        unit_limit=5_000,
        unit_price=7,
        blockhash=Hash.default(),
        version=version,  # type: ignore[arg-type]
    )
    assert len(message.instructions) == 3
    assert signer_keys(message) == [PAYER.pubkey()]
    wire, signature = sign(message, [PAYER, Keypair()])  # a keypair it does not need is ignored
    transaction = VersionedTransaction.from_bytes(wire)
    assert transaction.signatures == [signature]
    assert len(unsigned_bytes(message)) == len(wire)
