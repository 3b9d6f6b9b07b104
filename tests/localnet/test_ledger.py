"""The ledger: account storage and its getProgramAccounts index, the chain clock, rent."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from solders.hash import Hash
from solders.pubkey import Pubkey

from keeper.localnet.account_store import AccountStore, DataSlice, Memcmp
from keeper.localnet.clock import GENESIS_SLOT, MAX_BLOCKHASH_AGE, ChainClock
from keeper.localnet.ledger import rent_exempt_minimum
from keeper.localnet.model import Account
from keeper.localnet.rpc_accounts import base64_rows

OWNER = Pubkey.new_unique()
OTHER_OWNER = Pubkey.new_unique()


def key(n: int) -> Pubkey:
    return Pubkey(n.to_bytes(32, "big"))


def found(store: AccountStore, **query) -> dict[str, bytes]:
    return {
        name: bytes(row)
        for selection in store.program_accounts(OWNER, **query)
        for name, row in zip(selection.keys, selection.data, strict=True)
    }


@pytest.mark.parametrize(
    ("length", "lamports"), [(240, 2_561_280), (120, 1_726_080), (10_224, 72_049_920)]
)
def test_rent_at_default_rates(length, lamports):
    assert rent_exempt_minimum(length) == lamports


def test_accounts_are_found_by_owner_size_and_memcmp():
    store = AccountStore()
    store.load(
        {
            key(1): Account(1, b"\x05" * 8, OWNER),
            key(2): Account(1, b"\x05" * 4 + b"\x06" * 4, OWNER),
            key(3): Account(1, b"\x05" * 16, OWNER),
            key(4): Account(1, b"\x05" * 8, OTHER_OWNER),
        }
    )

    assert set(found(store)) == {str(key(1)), str(key(2)), str(key(3))}
    assert set(found(store, data_size=8)) == {str(key(1)), str(key(2))}
    assert set(found(store, memcmps=[Memcmp(4, b"\x06")])) == {str(key(2))}
    assert found(store, memcmps=[Memcmp(12, b"\x05")]) == {str(key(3)): b"\x05" * 16}


def test_a_memcmp_past_the_end_of_the_data_matches_nothing():
    store = AccountStore()
    store.put(key(1), Account(1, b"\x00" * 8, OWNER))

    assert found(store, memcmps=[Memcmp(7, b"\x00\x00")]) == {}


def test_a_data_slice_past_the_end_is_cut_short():
    store = AccountStore()
    store.put(key(1), Account(1, b"abcdefgh", OWNER))

    assert found(store, data_slice=DataSlice(6, 10)) == {str(key(1)): b"gh"}
    assert found(store, data_slice=DataSlice(20, 4)) == {str(key(1)): b""}


def test_an_account_that_changes_size_or_owner_moves_between_tables():
    store = AccountStore()
    store.put(key(1), Account(1, b"\x01" * 8, OWNER))

    store.put(key(1), Account(2, b"\x01" * 4, OWNER))
    assert found(store, data_size=8) == {}
    assert found(store, data_size=4) == {str(key(1)): b"\x01" * 4}

    store.put(key(1), Account(2, b"\x01" * 4, OTHER_OWNER))
    assert found(store) == {}
    assert store.get(key(1)) == Account(2, b"\x01" * 4, OTHER_OWNER)


def test_zero_lamports_deletes_and_the_row_is_reused():
    store = AccountStore()
    store.put(key(1), Account(1, b"\x01" * 8, OWNER))
    store.put(key(1), Account(0, b"\x01" * 8, OWNER))

    assert store.get(key(1)) is None
    assert found(store) == {}
    store.put(key(2), Account(1, b"\x02" * 8, OWNER))
    assert found(store) == {str(key(2)): b"\x02" * 8}
    assert len(store) == 1


def test_a_returned_account_is_a_copy():
    store = AccountStore()
    store.put(key(1), Account(5, b"\x01" * 8, OWNER))

    copy = store.get(key(1))
    copy.lamports = 99

    assert store.get(key(1)).lamports == 5


rows_strategy = st.lists(st.binary(min_size=6, max_size=6), min_size=1, max_size=40)
memcmp_strategy = st.tuples(st.integers(0, 6), st.binary(min_size=0, max_size=6))


@settings(max_examples=200, deadline=None)
@given(rows=rows_strategy, memcmps=st.lists(memcmp_strategy, max_size=3))
def test_select_agrees_with_a_plain_byte_comparison(rows, memcmps):
    # Few distinct byte values so that matches are common.
    rows = [bytes(b % 3 for b in row) for row in rows]
    memcmps = [(offset, bytes(b % 3 for b in pattern)) for offset, pattern in memcmps]
    store = AccountStore()
    store.load({key(n + 1): Account(1, row, OWNER) for n, row in enumerate(rows)})

    expected = {
        str(key(n + 1))
        for n, row in enumerate(rows)
        if all(
            row[offset : offset + len(pattern)] == pattern and offset + len(pattern) <= len(row)
            for offset, pattern in memcmps
        )
    }

    assert set(found(store, memcmps=[Memcmp(o, p) for o, p in memcmps])) == expected


@settings(max_examples=200, deadline=None)
@given(width=st.integers(0, 20), count=st.integers(1, 8), data=st.data())
def test_base64_rows_equals_base64_of_each_row(width, count, data):
    raw = data.draw(st.binary(min_size=width * count, max_size=width * count))
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(count, width)

    assert base64_rows(rows) == [base64.b64encode(bytes(row)).decode() for row in rows]


# -- clock --------------------------------------------------------------------------------


def new_clock(slot_ms: int = 400) -> ChainClock:
    return ChainClock(genesis_hash=Hash.default(), unix_timestamp=1_000_000, slot_ms=slot_ms)


def test_the_clock_advances_slot_ms_per_slot():
    clock = new_clock(slot_ms=400)

    clock.advance(5)

    assert clock.unix_timestamp == 1_000_002  # 2,000 ms


def test_set_clock_then_later_slots_follow_on():
    clock = new_clock()
    clock.set_unix_timestamp(5_000_000)

    clock.advance(10)

    assert clock.unix_timestamp == 5_000_004
    assert clock.block_time(GENESIS_SLOT) == 5_000_000


def test_skew_is_cumulative_and_visible_as_an_offset():
    clock = new_clock()

    clock.skew(86_400)
    clock.skew(86_400)

    assert clock.unix_timestamp == 1_000_000 + 2 * 86_400
    assert clock.skew_seconds == 2 * 86_400


def test_each_slot_has_its_own_blockhash():
    clock = new_clock()
    first = clock.latest_blockhash.blockhash

    clock.advance()

    assert clock.latest_blockhash.blockhash != first
    assert clock.is_blockhash_valid(first)


def test_last_valid_block_height_is_the_expiry_boundary():
    clock = new_clock()
    issued = clock.latest_blockhash

    clock.advance(MAX_BLOCKHASH_AGE)
    assert clock.block_height == issued.last_valid_block_height
    assert clock.is_blockhash_valid(issued.blockhash)

    clock.advance()
    assert not clock.is_blockhash_valid(issued.blockhash)


def test_an_unknown_blockhash_is_not_valid():
    assert not new_clock().is_blockhash_valid(Hash.new_unique())
