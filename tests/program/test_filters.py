"""getProgramAccounts filters and slices produce exactly the JSON RPC nodes expect.

``bytes`` in a memcmp is base58 (what every RPC node accepts): the one-byte state 2 is
"3" and 3 is "4"; discriminators and pubkeys are spelled out as literals below.
"""

from __future__ import annotations

import json

from solders.pubkey import Pubkey

from keeper.program import filters
from keeper.program.batch import DONE_JOB_SLICE, FULL_JOB, DataSlice
from keeper.program.state import JobState

JOB_DISCRIMINATOR_B58 = "GESmduEEyPE"  # 5b10a2052dd27d41
RUN_DISCRIMINATOR_B58 = "ZZTu8o6YwNM"  # c2a96ee6eb0be116
MARKET_DISCRIMINATOR_B58 = "afwFqcydEve"  # c94ebbe1f0c6c9fb
MARKET = Pubkey.from_string("5KporntzQkHiVMKxnFuUGcwPKhtVdhaFkneEkhnoZi1U")
JOB = Pubkey.from_string("DySeBLWJ6vJiLwLvcVf5Wfj2a2pFqqTDH1xEDMXVCMHx")

IS_JOB = {"memcmp": {"offset": 0, "bytes": JOB_DISCRIMINATOR_B58}}


def test_single_byte_states_are_base58_digits() -> None:
    assert filters.memcmp(208, bytes([JobState.QUEUED])) == {
        "memcmp": {"offset": 208, "bytes": "1"}
    }
    assert filters.memcmp(208, bytes([JobState.DONE])) == {"memcmp": {"offset": 208, "bytes": "3"}}
    assert filters.memcmp(208, bytes([JobState.STOPPED])) == {
        "memcmp": {"offset": 208, "bytes": "4"}
    }


def test_discriminator_filters() -> None:
    assert filters.is_job() == IS_JOB
    assert filters.is_run() == {"memcmp": {"offset": 0, "bytes": RUN_DISCRIMINATOR_B58}}
    assert filters.is_market() == {"memcmp": {"offset": 0, "bytes": MARKET_DISCRIMINATOR_B58}}


def test_done_jobs_are_current_layout_jobs_with_state_byte_3_in_base58() -> None:
    assert filters.jobs_in_state(JobState.DONE) == [
        IS_JOB,
        {"memcmp": {"offset": 208, "bytes": "3"}},
        {"dataSize": 240},
    ]


def test_stopped_jobs_filter_on_base58_4() -> None:
    assert filters.jobs_in_state(JobState.STOPPED) == [
        IS_JOB,
        {"memcmp": {"offset": 208, "bytes": "4"}},
        {"dataSize": 240},
    ]


def test_jobs_of_one_market_add_the_market_at_offset_72() -> None:
    assert filters.jobs_in_state_of_market(JobState.DONE, MARKET) == [
        IS_JOB,
        {"memcmp": {"offset": 208, "bytes": "3"}},
        {"dataSize": 240},
        {"memcmp": {"offset": 72, "bytes": "5KporntzQkHiVMKxnFuUGcwPKhtVdhaFkneEkhnoZi1U"}},
    ]


def test_legacy_jobs_are_the_232_byte_accounts() -> None:
    assert filters.legacy_jobs_in_state(JobState.QUEUED) == [
        IS_JOB,
        {"memcmp": {"offset": 208, "bytes": "1"}},
        {"dataSize": 232},
    ]


def test_runs_of_a_job_match_the_job_at_offset_8() -> None:
    assert filters.runs_of_job(JOB) == [
        {"memcmp": {"offset": 0, "bytes": RUN_DISCRIMINATOR_B58}},
        {"memcmp": {"offset": 8, "bytes": "DySeBLWJ6vJiLwLvcVf5Wfj2a2pFqqTDH1xEDMXVCMHx"}},
    ]
    assert filters.all_runs() == [{"memcmp": {"offset": 0, "bytes": RUN_DISCRIMINATOR_B58}}]


def test_markets_are_never_filtered_on_size() -> None:
    # Markets are 10,224 or (opened before April 2024) 3,376 bytes: no dataSize filter.
    assert filters.all_markets() == [{"memcmp": {"offset": 0, "bytes": MARKET_DISCRIMINATOR_B58}}]


def test_data_slices() -> None:
    assert filters.data_slice(DONE_JOB_SLICE) == {"offset": 136, "length": 81}
    assert filters.data_slice(FULL_JOB) == {"offset": 0, "length": 240}
    assert filters.data_slice(DataSlice(8, 32)) == {"offset": 8, "length": 32}
    assert filters.no_data() == {"offset": 0, "length": 0}


def test_filters_serialise_to_the_json_rpc_shape() -> None:
    text = json.dumps(filters.jobs_in_state(JobState.DONE), separators=(",", ":"))
    assert text == (
        '[{"memcmp":{"offset":0,"bytes":"GESmduEEyPE"}},'
        '{"memcmp":{"offset":208,"bytes":"3"}},'
        '{"dataSize":240}]'
    )


def test_no_filter_uses_the_borsh_content_length() -> None:
    # 233 is the Borsh length of a JobAccount; nothing on chain is that size.
    for state in JobState:
        assert {"dataSize": 240} in filters.jobs_in_state(state)
        assert {"dataSize": 233} not in filters.jobs_in_state(state)
