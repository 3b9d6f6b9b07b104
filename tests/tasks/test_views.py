"""Views: absent, foreign, decoded — and no silent "absent" for what was never fetched."""

from __future__ import annotations

import dataclasses

import pytest
from task_factories import JOB, job, market, run, stake

from keeper.program import layouts
from keeper.tasks.census import queued_jobs
from keeper.tasks.views import (
    ABSENT,
    Foreign,
    job_view,
    market_terms_view,
    market_view,
    require,
    run_view,
    stake_view,
)


def test_missing_account_is_absent() -> None:
    assert job_view(None) is ABSENT
    assert run_view(None) is ABSENT
    assert market_view(None) is ABSENT
    assert stake_view(None) is ABSENT


def test_decodes_each_kind() -> None:
    assert job_view(layouts.encode_job(job())) == job()
    assert run_view(layouts.encode_run(run())) == run()
    assert market_view(layouts.encode_market(market())) == market()
    assert stake_view(layouts.encode_stake(stake())) == stake()


def test_legacy_job_decodes_as_legacy() -> None:
    view = job_view(layouts.encode_job(job(timeout=None)))
    assert isinstance(view, layouts.JobAccount)
    assert view.is_legacy


@pytest.mark.parametrize(
    "data",
    [
        b"",
        bytes(240),  # zero discriminator
        layouts.encode_run(run()),  # another kind
        layouts.encode_job(job())[:230],  # neither 240 nor 232
    ],
)
def test_other_bytes_are_foreign(data: bytes) -> None:
    assert isinstance(job_view(data), Foreign)


def test_account_of_another_owner_is_foreign() -> None:
    view = job_view(layouts.encode_job(job()), owned=False)
    assert isinstance(view, Foreign)
    assert "owned" in view.why


def test_require_refuses_an_unfetched_key() -> None:
    assert require({JOB: ABSENT}, JOB, "job") is ABSENT
    with pytest.raises(KeyError, match="pass ABSENT"):
        require({}, JOB, "job")


def test_market_terms_decode_every_field_but_the_queue() -> None:
    whole = market(queue=(JOB,))
    data = layouts.encode_market(whole)[: layouts.MARKET_TERMS_SIZE]
    terms = market_terms_view(data)
    assert isinstance(terms, layouts.MarketAccount)
    assert terms == dataclasses.replace(whole, queue=None)


def test_market_terms_absent_stays_absent_and_short_is_foreign() -> None:
    assert market_terms_view(None) is ABSENT
    short = layouts.encode_market(market())[: layouts.MARKET_TERMS_SIZE - 1]
    assert isinstance(market_terms_view(short), Foreign)
    assert isinstance(market_terms_view(b"\x00" * 200), Foreign)  # wrong discriminator
    assert market_terms_view(layouts.encode_market(market()), owned=False) == Foreign(
        "owned by another program"
    )


def test_the_census_refuses_a_market_whose_queue_was_not_read() -> None:
    terms = market_terms_view(layouts.encode_market(market(queue=(JOB,))))
    with pytest.raises(ValueError, match="queue"):
        queued_jobs(terms)
