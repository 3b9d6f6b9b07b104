"""The local clock's veto and the verify endpoints' agreement rule."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st
from task_factories import MARKET, PAYER, RUN, job, key, market, run

from keeper.program.instructions import MaintenanceInstruction
from keeper.program.state import JobState
from keeper.tasks import expired_runs, finished_jobs, trust
from keeper.tasks.plan import ACTION_REASONS, Action, Plan, Reason, Task
from keeper.tasks.views import ABSENT

times = st.integers(-(2**40), 2**40)
leads = st.integers(0, 10**9)
REASONS_TO_ACT = sorted(ACTION_REASONS)


def _action(reason: Reason, kind: MaintenanceInstruction, n: int = 0) -> Action:
    return Action(kind=kind, account=key(f"target {n}"), reason=reason, payer=PAYER, market=MARKET)


# -- the clock veto ------------------------------------------------------------------------


@given(chain=times, wall=times, max_lead=leads)
def test_the_veto_is_exactly_a_lead_over_the_limit(chain: int, wall: int, max_lead: int) -> None:
    assert trust.clock_vetoes(chain, wall, max_lead) is (chain - wall > max_lead)


@given(wall=times, behind=st.integers(0, 2**40), max_lead=leads)
def test_a_chain_clock_behind_this_machine_never_vetoes(
    wall: int, behind: int, max_lead: int
) -> None:
    # The local chain's demo world runs months behind: its guard never fires.
    assert not trust.clock_vetoes(wall - behind, wall, max_lead)


@given(chain=times, wall=times, max_lead=leads, more=st.integers(0, 2**40))
def test_a_larger_lead_never_lifts_a_veto(chain: int, wall: int, max_lead: int, more: int) -> None:
    if trust.clock_vetoes(chain, wall, max_lead):
        assert trust.clock_vetoes(chain + more, wall, max_lead)


def test_only_timeout_and_expiry_are_time_based() -> None:
    assert {Reason.RUN_TIMED_OUT, Reason.JOB_EXPIRED} == trust.TIME_BASED
    assert trust.TIME_BASED <= ACTION_REASONS


@given(now=times, grace=st.integers(0, 10**6))
def test_the_reasons_the_veto_lets_through_read_no_time(now: int, grace: int) -> None:
    """Why a run whose job is gone or Done, and a Done job whose market is gone, may be acted
    on under a lying clock: their verdict is the same at every chain time."""
    assert expired_runs.verdict(run(), ABSENT, now, grace) is Reason.RUN_JOB_MISSING
    done = job(state=JobState.DONE)
    assert expired_runs.verdict(run(), done, now, grace) is Reason.RUN_JOB_DONE
    params = finished_jobs.FinishedJobsParams(is_admin=True)
    assert finished_jobs.market_verdict(done.time_end, ABSENT, now, params) is (Reason.MARKET_GONE)


@given(now=times)
def test_timeout_and_expiry_do_depend_on_the_clock(now: int) -> None:
    running = job(state=JobState.QUEUED, timeout=3_600)
    late = run(time=now - 3_600 - 301)
    assert expired_runs.verdict(late, running, now, 300) is Reason.RUN_TIMED_OUT
    assert expired_runs.verdict(late, running, now - 10**6, 300) is Reason.RUN_NOT_TIMED_OUT
    params = finished_jobs.FinishedJobsParams(is_admin=True)
    live = market(job_expiration=86_400)
    assert finished_jobs.market_verdict(now - 86_401, live, now, params) is Reason.JOB_EXPIRED
    assert finished_jobs.market_verdict(now - 86_400, live, now, params) is Reason.NOT_EXPIRED


# -- agreement -----------------------------------------------------------------------------


@given(primary=times, others=st.lists(times, max_size=5), tolerance=st.integers(0, 10**6))
def test_times_agree_within_the_tolerance_only(
    primary: int, others: list[int], tolerance: int
) -> None:
    expected = all(abs(other - primary) <= tolerance for other in others)
    assert trust.times_agree(primary, others, tolerance) is expected


@given(
    reason=st.sampled_from(REASONS_TO_ACT),
    kind=st.sampled_from(sorted(trust.NEEDS_AGREEMENT)),
    verdicts=st.lists(st.one_of(st.none(), st.sampled_from(list(Reason))), min_size=1),
    times_agreed=st.booleans(),
)
def test_one_disagreeing_endpoint_withholds(
    reason: Reason,
    kind: MaintenanceInstruction,
    verdicts: list[Reason | None],
    times_agreed: bool,
) -> None:
    action = _action(reason, kind)
    result = trust.agreement(action, verdicts, times_agreed=times_agreed)
    all_send = all(v is None for v in verdicts)
    clock_ok = times_agreed or reason not in trust.TIME_BASED
    assert (result is None) is (all_send and clock_ok)
    if result is not None:
        assert result is Reason.VERIFY_DISAGREES


def test_no_verdicts_never_agree() -> None:
    action = _action(Reason.MARKET_GONE, MaintenanceInstruction.CLEAN_ADMIN)
    assert trust.agreement(action, [], times_agreed=True) is Reason.VERIFY_UNAVAILABLE


def test_a_time_based_quit_needs_the_clocks_to_agree_a_done_job_does_not() -> None:
    timed_out = _action(Reason.RUN_TIMED_OUT, MaintenanceInstruction.QUIT_ADMIN)
    job_done = _action(Reason.RUN_JOB_DONE, MaintenanceInstruction.QUIT_ADMIN)
    assert trust.agreement(timed_out, [None], times_agreed=False) is Reason.VERIFY_DISAGREES
    assert trust.agreement(job_done, [None], times_agreed=False) is None


def test_only_admin_instructions_need_agreement() -> None:
    # clean and claim are checked by the program itself (expiry, state) on the real clock.
    assert {
        MaintenanceInstruction.QUIT_ADMIN,
        MaintenanceInstruction.CLEAN_ADMIN,
    } == trust.NEEDS_AGREEMENT


# -- withholding ---------------------------------------------------------------------------


@given(
    picks=st.lists(
        st.tuples(
            st.sampled_from(REASONS_TO_ACT),
            st.one_of(
                st.none(),
                st.sampled_from(
                    [Reason.CLOCK_AHEAD, Reason.VERIFY_DISAGREES, Reason.VERIFY_UNAVAILABLE]
                ),
            ),
        ),
        max_size=30,
    )
)
def test_withheld_actions_become_counted_skips(picks: list[tuple[Reason, Reason | None]]) -> None:
    actions = tuple(
        _action(reason, MaintenanceInstruction.QUIT_ADMIN, n) for n, (reason, _) in enumerate(picks)
    )
    plan = Plan(Task.EXPIRED_RUNS, actions, Counter({Reason.NOT_EXPIRED: 2}), (RUN,))
    why = [withheld for _reason, withheld in picks]
    out = trust.withhold(plan, why)
    assert out.actions == tuple(a for a, w in zip(actions, why, strict=True) if w is None)
    assert out.skips - plan.skips == Counter(w for w in why if w is not None)
    assert out.orphans == plan.orphans
    assert len(out.actions) + sum(out.skips.values()) == len(actions) + 2


def test_withholding_keeps_the_plans_backlog() -> None:
    clean = Action(MaintenanceInstruction.CLEAN, key("j"), Reason.JOB_EXPIRED, PAYER, MARKET)
    plan = Plan(
        Task.FINISHED_JOBS,
        (clean,),
        waiting=Counter({Reason.JOB_EXPIRED: 5}),
        waiting_lamports=Counter({Reason.JOB_EXPIRED: 50}),
    )
    kept = trust.withhold(plan, [Reason.CLOCK_AHEAD])
    assert kept.actions == ()
    assert kept.waiting == plan.waiting
    assert kept.waiting_lamports == plan.waiting_lamports
