"""Views: absent, foreign, decoded — and no silent "absent" for what was never fetched."""

from __future__ import annotations

import pytest
from task_factories import JOB, job, market, run, stake

from keeper.program import layouts
from keeper.tasks.views import (
    ABSENT,
    Foreign,
    job_view,
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
