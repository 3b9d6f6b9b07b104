"""Accounts and strategies for the pure decision tests (dataclasses, no chain).

Named uniquely (not ``conftest``) so test modules can import it: pytest puts this
directory on ``sys.path``. The chain fixtures' one account builder is keeper/localnet.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

from hypothesis import strategies as st
from solders.pubkey import Pubkey

from keeper.program.instructions import MaintenanceInstruction
from keeper.program.layouts import JobAccount, MarketAccount, RunAccount, StakeAccount
from keeper.program.state import JobState
from keeper.tasks.builders import REASONS_FOR
from keeper.tasks.identity import ClaimIdentity
from keeper.tasks.plan import Action
from keeper.tasks.views import ABSENT, Foreign


def key(label: str | int) -> Pubkey:
    return Pubkey.from_bytes(hashlib.sha256(f"test {label}".encode()).digest())


MARKET = key("market")
PAYER = key("payer")
JOB = key("job")
RUN = key("run")
NODE = key("node")
KEEPER = key("keeper")  # fee payer and authority
PROGRAM = key("program")
IDENTITY = ClaimIdentity(authority=NODE, stake=key("stake"), nft=key("nft"), metadata=key("meta"))


def job(**changes: Any) -> JobAccount:
    base = JobAccount(
        ipfs_job=bytes(32),
        ipfs_result=bytes(32),
        market=MARKET,
        node=Pubkey.default(),
        payer=PAYER,
        price=10,
        project=key("project"),
        state=JobState.DONE,
        time_end=1_000,
        time_start=0,
        timeout=3_600,
    )
    return dataclasses.replace(base, **changes)


def legacy_job(**changes: Any) -> JobAccount:
    return job(timeout=None, **changes)


def run(**changes: Any) -> RunAccount:
    base = RunAccount(job=JOB, node=NODE, payer=PAYER, state=0, time=10_000)
    return dataclasses.replace(base, **changes)


def market(**changes: Any) -> MarketAccount:
    base = MarketAccount(
        authority=key("market authority"),
        job_expiration=86_400,
        job_price=10,
        job_timeout=3_600,
        job_type=0,
        vault=key("vault"),
        vault_bump=255,
        node_access_key=Pubkey.default(),
        node_xnos_minimum=100,
        queue_type=0,
        queue=(),
    )
    return dataclasses.replace(base, **changes)


def stake(**changes: Any) -> StakeAccount:
    base = StakeAccount(
        amount=1_000,
        authority=NODE,
        duration=0,
        time_unstake=0,
        vault=key("stake vault"),
        vault_bump=255,
        xnos=100,
    )
    return dataclasses.replace(base, **changes)


# --- hypothesis: small key pools so that accounts refer to each other -------------------

I64 = st.integers(-(2**63), 2**63 - 1)
TIMES = st.integers(-(2**40), 2**40) | I64
STATES = st.sampled_from([0, 1, 2, 3, 4, 255])
KEYS = st.integers(0, 5).map(lambda i: key(f"pool {i}"))
MARKET_KEYS = st.integers(0, 2).map(lambda i: key(f"market {i}"))

JOBS = st.builds(
    job,
    market=MARKET_KEYS,
    payer=KEYS,
    state=STATES,
    time_end=TIMES,
    timeout=TIMES | st.none(),
)
JOB_VIEWS = JOBS | st.just(ABSENT) | st.just(Foreign("test"))
MARKETS = st.builds(
    market,
    job_expiration=TIMES,
    job_type=st.sampled_from([0, 1, 255]),
    node_xnos_minimum=st.integers(0, 200),
    queue=st.lists(st.integers(0, 9).map(lambda i: key(f"job {i}")), max_size=4).map(tuple),
)
MARKET_VIEWS = MARKETS | st.just(ABSENT) | st.just(Foreign("test"))
RUNS = st.builds(run, job=st.integers(0, 9).map(lambda i: key(f"job {i}")), payer=KEYS, time=TIMES)
STAKES = st.builds(stake, authority=st.sampled_from([NODE, KEEPER]), xnos=st.integers(0, 200))
STAKE_VIEWS = STAKES | st.just(ABSENT) | st.just(Foreign("test"))
JOB_KEYS = st.integers(0, 9).map(lambda i: key(f"job {i}"))


# --- packing workloads -------------------------------------------------------------------

KINDS = list(MaintenanceInstruction)


def action(kind: MaintenanceInstruction, target: int, payer: int, market: int) -> Action:
    return Action(
        kind=kind,
        account=key(f"target {target}"),
        reason=min(REASONS_FOR[kind]),
        payer=KEEPER if kind is MaintenanceInstruction.CLAIM else key(f"payer {payer}"),
        market=None if kind is MaintenanceInstruction.QUIT_ADMIN else key(f"market {market}"),
    )


@st.composite
def workloads(draw: st.DrawFn, max_size: int = 120) -> list[Action]:
    targets = draw(st.lists(st.integers(0, 10**6), unique=True, max_size=max_size))
    payers = draw(st.integers(1, 40))
    markets = draw(st.integers(1, 4))
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=4))
    return [
        action(
            draw(st.sampled_from(kinds)),
            target,
            draw(st.integers(0, payers - 1)),
            draw(st.integers(0, markets - 1)),
        )
        for target in targets
    ]
