"""Shared fixtures for the program-layer tests.

Hypothesis strategies for the account dataclasses are registered here, so a test asks
for ``st.from_type(JobAccount)`` and gets values that fit the on-chain field widths.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import strategies as st
from solders.pubkey import Pubkey

from keeper.program.anchor import idl_text
from keeper.program.layouts import (
    MARKET_QUEUE_CAPACITY,
    JobAccount,
    MarketAccount,
    RunAccount,
    StakeAccount,
)

REFERENCE_IDL_ENV = "NOSANA_REFERENCE_IDL"
# The published IDL lives beside the facts page: ../shared/reference/ from the repository.
REPOSITORY = Path(__file__).resolve().parents[2]
DEFAULT_REFERENCE_IDL = REPOSITORY.parent / "shared" / "reference" / "nosana_jobs.idl.json"

U8 = st.integers(0, 2**8 - 1)
U64 = st.integers(0, 2**64 - 1)
I64 = st.integers(-(2**63), 2**63 - 1)
U128 = st.integers(0, 2**128 - 1)
HASH32 = st.binary(min_size=32, max_size=32)
PUBKEYS = HASH32.map(Pubkey.from_bytes)

st.register_type_strategy(Pubkey, PUBKEYS)
st.register_type_strategy(
    JobAccount,
    st.builds(
        JobAccount,
        ipfs_job=HASH32,
        ipfs_result=HASH32,
        market=PUBKEYS,
        node=PUBKEYS,
        payer=PUBKEYS,
        price=U64,
        project=PUBKEYS,
        state=U8,
        time_end=I64,
        time_start=I64,
        timeout=I64 | st.none(),  # None: a legacy 232-byte job
    ),
)
st.register_type_strategy(
    RunAccount,
    st.builds(RunAccount, job=PUBKEYS, node=PUBKEYS, payer=PUBKEYS, state=U8, time=I64),
)
st.register_type_strategy(
    MarketAccount,
    st.builds(
        MarketAccount,
        authority=PUBKEYS,
        job_expiration=I64,
        job_price=U64,
        job_timeout=I64,
        job_type=U8,
        vault=PUBKEYS,
        vault_bump=U8,
        node_access_key=PUBKEYS,
        node_xnos_minimum=U128,
        queue_type=U8,
        # Short queues keep examples small; the capacity itself is tested by example.
        queue=st.lists(PUBKEYS, max_size=min(12, MARKET_QUEUE_CAPACITY)).map(tuple),
    ),
)
st.register_type_strategy(
    StakeAccount,
    st.builds(
        StakeAccount,
        amount=U64,
        authority=PUBKEYS,
        duration=U64,
        time_unstake=I64,
        vault=PUBKEYS,
        vault_bump=U8,
        xnos=U128,
    ),
)


@pytest.fixture(scope="session")
def reference_idl() -> dict[str, Any]:
    """Nosana's published IDL, or a skip that says where it was looked for.

    An explicit ``NOSANA_REFERENCE_IDL`` naming a missing file fails instead: that is a
    mistake to fix, not an absent optional input.
    """
    configured = os.environ.get(REFERENCE_IDL_ENV)
    if configured and not Path(configured).is_file():
        pytest.fail(f"{REFERENCE_IDL_ENV}={configured} is not a file")
    path = Path(configured) if configured else DEFAULT_REFERENCE_IDL
    if not path.is_file():
        pytest.skip(
            f"reference IDL not found at {path}: it lives in ../shared/reference/ beside the "
            f"repository; set {REFERENCE_IDL_ENV} to its path to run the comparison"
        )
    loaded: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return loaded


@pytest.fixture(scope="session")
def package_idl() -> dict[str, Any]:
    """The package's own IDL as plain JSON (the file anchorpy's coders are built from)."""
    loaded: dict[str, Any] = json.loads(idl_text())
    return loaded
