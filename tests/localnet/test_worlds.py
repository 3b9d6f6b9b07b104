"""The seeded worlds: the demo's labelled cases agree with the program; scale's numbers hold."""

from __future__ import annotations

import time
from collections import Counter

import numpy as np
import pytest
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from keeper.errors import ConfigError, DecodeError
from keeper.localnet.builder import World
from keeper.localnet.sandbox import Outcome, Sandbox
from keeper.localnet.worlds import GRACE_SECONDS, WORLDS, build_scale, load_world
from keeper.program import instructions as ix
from keeper.program.ids import SYSTEM_PROGRAM
from keeper.program.layouts import (
    JOB_DISCRIMINATOR,
    RUN_DISCRIMINATOR,
    JobAccount,
    decode_job,
    decode_market,
    decode_run,
)
from keeper.program.state import JobState
from keeper.tasks.plan import Reason

ACTIONS = {"clean", "cleanAdmin", "quitAdmin", "claim", "leave"}


@pytest.fixture(scope="module")
def demo() -> World:
    return load_world("demo")


def outcomes(world: World, outcome: str) -> list[str]:
    return [label for label, expected in world.expectations.items() if expected == outcome]


def job_at(world: World, label: str) -> JobAccount:
    return decode_job(world.accounts[world.labels[label]].data)


def runs_by_job(world: World) -> dict[Pubkey, list[Pubkey]]:
    found: dict[Pubkey, list[Pubkey]] = {}
    for key, account in world.accounts.items():
        if account.owner == world.program_id and account.data[:8] == RUN_DISCRIMINATOR:
            found.setdefault(decode_run(account.data).job, []).append(key)
    return found


# --- shape ---------------------------------------------------------------------------------


def test_every_expectation_names_a_label_and_a_known_reason(demo: World) -> None:
    reasons = {reason.value for reason in Reason}
    for label, expected in demo.expectations.items():
        assert label in demo.labels
        action, _, reason = expected.partition(":")
        assert action in ACTIONS, expected
        assert reason in reasons, expected


def test_demo_has_every_case_the_brief_lists(demo: World) -> None:
    counts = Counter(demo.expectations.values())
    for outcome, at_least in {
        "quitAdmin:run_timed_out": 1,
        "quitAdmin:run_job_missing": 1,
        "quitAdmin:run_job_done": 1,
        "leave:run_not_timed_out": 3,  # recent, within grace, extended timeout
        "claim:job_stopped": 2,  # open and gated market
        "leave:job_running": 2,
        "leave:stake_too_low": 1,
        "leave:market_missing": 1,
        "clean:job_expired": 5,
        "leave:not_expired": 2,
        "cleanAdmin:market_gone": 1,
        "leave:queued": 1,
        "leave:orphan": 3,
        "leave:legacy_layout": 1,
        "leave:unknown_state": 2,
        "leave:undecodable": 1,
    }.items():
        assert counts[outcome] >= at_least, outcome
    assert 50 <= len(demo.accounts) <= 70


def test_demo_payers_are_shared_across_markets(demo: World) -> None:
    cleaned = [job_at(demo, label) for label in outcomes(demo, "clean:job_expired")]
    assert len({job.market for job in cleaned}) >= 3
    assert len({job.payer for job in cleaned}) < len(cleaned)


def test_demo_clock_is_days_away_from_wall_time(demo: World) -> None:
    assert abs(demo.unix_timestamp - time.time()) > 2 * 86_400


def test_demo_markets_cover_the_odd_layouts(demo: World) -> None:
    legacy = demo.accounts[demo.labels["market_legacy_size"]]
    assert len(legacy.data) == 3_376
    assert decode_market(demo.accounts[demo.labels["market_gated"]].data).queue_type == 255
    assert demo.labels["market_gone"] not in demo.accounts
    open_market = demo.accounts[demo.labels["market_open"]]
    stale = demo.labels["orphan_in_stale_tail"]
    assert bytes(stale) in open_market.data
    assert stale not in decode_market(open_market.data).queue


# --- the expectations agree with the program ----------------------------------------------------


def clean(world: World, label: str, market: Pubkey | None = None) -> Outcome:
    job = job_at(world, label)
    accounts = ix.CleanAccounts(world.labels[label], market or job.market, job.payer)
    return Sandbox(world).execute(ix.clean(accounts, program_id=world.program_id))


def claim(world: World, label: str) -> Outcome:
    job, keeper = job_at(world, label), world.keeper.pubkey()
    accounts = ix.ClaimAccounts(
        job=world.labels[label],
        run=Keypair().pubkey(),
        market=job.market,
        stake=world.labels["keeper_stake"],
        nft=world.labels["keeper_nft"],
        metadata=world.labels["keeper_nft_metadata"],
        payer=keeper,
        authority=keeper,
    )
    return Sandbox(world).execute(ix.claim(accounts, program_id=world.program_id))


def test_expired_jobs_clean_with_their_own_market(demo: World) -> None:
    for label in outcomes(demo, "clean:job_expired"):
        assert clean(demo, label).ok, label


def test_unexpired_jobs_are_refused_by_clean(demo: World) -> None:
    for label in outcomes(demo, "leave:not_expired"):
        assert clean(demo, label).error == "JobNotExpired", label
    job = job_at(demo, "done_expiry_boundary")
    market = decode_market(demo.accounts[job.market].data)
    assert market.job_expiration == demo.unix_timestamp - job.time_end


def test_done_jobs_of_gone_markets_need_clean_admin(demo: World) -> None:
    for label in outcomes(demo, "cleanAdmin:market_gone"):
        job = job_at(demo, label)
        assert (job.state, job.market in demo.accounts) == (JobState.DONE, False)
        assert clean(demo, label).error == "AccountNotInitialized"
        accounts = ix.CleanAdminAccounts(demo.labels[label], job.payer, demo.keeper.pubkey())
        assert Sandbox(demo).execute(ix.clean_admin(accounts, program_id=demo.program_id)).ok


def test_runs_to_quit_are_accepted_by_quit_admin_for_the_stated_reason(demo: World) -> None:
    now = demo.unix_timestamp
    for outcome in (
        "quitAdmin:run_timed_out",
        "quitAdmin:run_job_missing",
        "quitAdmin:run_job_done",
    ):
        for label in outcomes(demo, outcome):
            run = decode_run(demo.accounts[demo.labels[label]].data)
            job = demo.accounts.get(run.job)
            if outcome.endswith("missing"):
                assert job is None
            elif outcome.endswith("done"):
                assert job is not None
                assert decode_job(job.data).state == JobState.DONE
            else:
                assert job is not None
                timeout = decode_job(job.data).timeout
                assert timeout is not None
                assert now > run.time + timeout + GRACE_SECONDS
            accounts = ix.QuitAdminAccounts(demo.labels[label], run.payer, demo.keeper.pubkey())
            assert Sandbox(demo).execute(ix.quit_admin(accounts, program_id=demo.program_id)).ok


def test_runs_left_alone_have_not_timed_out_even_with_grace(demo: World) -> None:
    now = demo.unix_timestamp
    for label in outcomes(demo, "leave:run_not_timed_out"):
        run = decode_run(demo.accounts[demo.labels[label]].data)
        job = decode_job(demo.accounts[run.job].data)
        assert job.state != JobState.DONE
        assert job.timeout is not None
        assert now <= run.time + job.timeout + GRACE_SECONDS, label
    extended = decode_run(demo.accounts[demo.labels["run_of_job_running_extended"]].data)
    market = decode_market(demo.accounts[demo.labels["market_open"]].data)
    assert now > extended.time + market.job_timeout + GRACE_SECONDS  # expired under the old timeout


def test_stopped_jobs_to_claim_have_no_run_and_the_program_accepts_the_claim(demo: World) -> None:
    runs = runs_by_job(demo)
    for label in outcomes(demo, "claim:job_stopped"):
        assert demo.labels[label] not in runs
        outcome = claim(demo, label)
        assert outcome.ok, (label, outcome.logs)


def test_running_jobs_have_a_run(demo: World) -> None:
    runs = runs_by_job(demo)
    for label in outcomes(demo, "leave:job_running"):
        assert demo.labels[label] in runs, label


def test_stake_too_low_and_market_missing_are_what_claim_would_hit(demo: World) -> None:
    for label in outcomes(demo, "leave:stake_too_low"):
        assert claim(demo, label).error == "NodeNotEnoughStake"
    for label in outcomes(demo, "leave:market_missing"):
        assert claim(demo, label).error == "AccountNotInitialized"


def _label_of(world: World, key: Pubkey, prefix: str) -> bool:
    """Whether ``key`` is labelled with an expectation starting with ``prefix``."""
    return any(
        world.labels.get(label) == key and expected.startswith(prefix)
        for label, expected in world.expectations.items()
    )


def test_queued_jobs_and_orphans(demo: World) -> None:
    runs = runs_by_job(demo)
    for label in outcomes(demo, "leave:queued") + outcomes(demo, "leave:orphan"):
        job = job_at(demo, label)
        # A run the keeper quits first (its label says quitAdmin) leaves an orphan behind.
        live_runs = [
            run
            for run in runs.get(demo.labels[label], [])
            if not _label_of(demo, run, "quitAdmin:")
        ]
        assert (job.state, bool(live_runs)) == (JobState.QUEUED, False)
        market_account = demo.accounts.get(job.market)
        queued = (
            market_account is not None
            and demo.labels[label] in decode_market(market_account.data).queue
        )
        assert queued == (demo.expectations[label] == "leave:queued"), label


def test_jobs_no_instruction_can_touch(demo: World) -> None:
    for label in outcomes(demo, "leave:legacy_layout"):
        assert len(demo.accounts[demo.labels[label]].data) == 232
        assert clean(demo, label).error == "AccountDidNotDeserialize"
        assert claim(demo, label).error == "AccountDidNotDeserialize"
    for label in outcomes(demo, "leave:unknown_state"):
        assert job_at(demo, label).state not in {0, 2, 3}
        assert clean(demo, label).error == "JobInWrongState"
    for label in outcomes(demo, "leave:undecodable"):
        account = demo.accounts[demo.labels[label]]
        assert account.data[:8] == JOB_DISCRIMINATOR
        with pytest.raises(DecodeError):
            decode_job(account.data)
        accounts = ix.CleanAccounts(demo.labels[label], demo.labels["market_open"], SYSTEM_PROGRAM)
        outcome = Sandbox(demo).execute(ix.clean(accounts, program_id=demo.program_id))
        assert outcome.error == "AccountDidNotDeserialize"


# --- empty and scale ---------------------------------------------------------------------------


def test_empty_world_is_the_keeper_and_the_programs() -> None:
    world = load_world("empty")
    non_programs = [key for key, account in world.accounts.items() if not account.executable]
    assert non_programs == [world.keeper.pubkey()]
    assert world.expectations == {}


def test_unknown_world_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="demo"):
        load_world("moon")
    assert set(WORLDS) == {"demo", "scale", "empty"}


def test_scale_world_has_the_asked_size_and_due_fraction() -> None:
    world = build_scale(jobs=2_500, due_fraction=0.1, markets=3, payers=7, chunk=1_000)
    jobs = [
        decode_job(account.data)
        for account in world.accounts.values()
        if account.owner == world.program_id and account.data[:8] == JOB_DISCRIMINATOR
    ]
    assert len(jobs) == world.counts["done_jobs"] == 2_500
    expirations = {
        key: decode_market(world.accounts[key].data).job_expiration
        for key in (world.labels[f"market_{i}"] for i in range(3))
    }
    now = world.unix_timestamp
    due = [job for job in jobs if expirations[job.market] < now - job.time_end]
    assert len(due) == world.counts["due_jobs"] == 250
    assert sum(world.counts[f"due_jobs:market_{i}"] for i in range(3)) == 250
    assert {job.state for job in jobs} == {JobState.DONE}
    payers = {job.payer for job in jobs}
    assert len(payers) <= 7
    assert all(world.accounts[payer].owner == SYSTEM_PROGRAM for payer in payers)


def test_scale_world_of_fifty_markets_and_ninety_percent_due() -> None:
    world = build_scale(jobs=5_000, due_fraction=0.9, markets=50, chunk=1_000)
    markets = {world.labels[f"market_{i}"]: i for i in range(50)}
    expirations = {key: decode_market(world.accounts[key].data).job_expiration for key in markets}
    jobs = [
        decode_job(account.data)
        for account in world.accounts.values()
        if account.owner == world.program_id and account.data[:8] == JOB_DISCRIMINATOR
    ]
    now = world.unix_timestamp
    due = [job for job in jobs if expirations[job.market] < now - job.time_end]

    assert len(jobs) == 5_000
    assert len(due) == world.counts["due_jobs"] == 4_500
    assert {job.market for job in jobs} == set(markets)  # every market holds jobs
    for key, index in markets.items():
        in_market = sum(1 for job in due if job.market == key)
        assert in_market == world.counts[f"due_jobs:market_{index}"]


def test_a_world_parameter_it_does_not_take_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="takes no markets"):
        load_world("demo", markets=50)


def test_scale_world_is_deterministic_per_seed() -> None:
    first, again = build_scale(jobs=50, seed=4), build_scale(jobs=50, seed=4)
    assert first.accounts.keys() == again.accounts.keys()
    other = build_scale(jobs=50, seed=5)
    assert first.accounts.keys() != other.accounts.keys()


def test_scale_world_rejects_nonsense() -> None:
    with pytest.raises(ConfigError):
        build_scale(jobs=10, due_fraction=1.5)
    with pytest.raises(ConfigError):
        build_scale(jobs=10, due_fraction=-0.1)
    with pytest.raises(ConfigError):
        build_scale(jobs=10, markets=0)


@pytest.mark.slow
def test_scale_world_of_a_quarter_million_jobs() -> None:
    world = build_scale(jobs=250_000)
    assert world.counts["due_jobs"] == 25_000
    sizes = np.fromiter((len(a.data) for a in world.accounts.values()), dtype=np.int64)
    assert np.count_nonzero(sizes == 240) == 250_000


def test_demo_can_rehearse_a_keeper_that_is_not_market_admin() -> None:
    admin = Pubkey.new_unique()
    world = load_world("demo", market_admin=admin)
    assert world.market_admin == admin != world.keeper.pubkey()
    label = outcomes(world, "cleanAdmin:market_gone")[0]
    job = job_at(world, label)
    accounts = ix.CleanAdminAccounts(world.labels[label], job.payer, world.keeper.pubkey())
    outcome = Sandbox(world).execute(ix.clean_admin(accounts, program_id=world.program_id))
    assert outcome.error == "Unauthorized"


def test_scale_worlds_steady_market_keeps_jobs_its_seconds_and_holds_none() -> None:
    world = build_scale(jobs=500, markets=2, chunk=100, steady_expiration=60)
    plain = build_scale(jobs=500, markets=2, chunk=100)
    steady = world.labels["market_steady"]
    assert decode_market(world.accounts[steady].data).job_expiration == 60
    jobs = [
        decode_job(account.data)
        for account in world.accounts.values()
        if account.owner == world.program_id and account.data[:8] == JOB_DISCRIMINATOR
    ]
    assert steady not in {job.market for job in jobs}
    assert "market_steady" not in plain.labels
    # The world's own accounts are those of the world without it.
    assert {k: v for k, v in world.accounts.items() if k != steady}.keys() >= plain.accounts.keys()
