"""Batch decoding: many records, dataSlice parts, and the errors for malformed buffers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from solders.pubkey import Pubkey

from keeper.errors import DecodeError
from keeper.program import batch, layouts
from keeper.program.batch import DONE_JOB_SLICE, FULL_JOB, FULL_RUN, DataSlice
from keeper.program.layouts import JobAccount, RunAccount


def job_number(index: int) -> JobAccount:
    """A distinct, recognisable job per index (keys are the index byte repeated)."""
    key = Pubkey.from_bytes(bytes([index % 256]) * 32)
    return JobAccount(
        ipfs_job=bytes([index % 256]) * 32,
        ipfs_result=bytes(32),
        market=key,
        node=Pubkey.default(),
        payer=key,
        price=1_000 * index,
        project=key,
        state=(0, 2, 3)[index % 3],
        time_end=1_700_000_000 + index,
        time_start=1_699_000_000 - index,
        timeout=-index,  # negative, to check the sign is read
    )


JOBS = [job_number(index) for index in range(1_000)]
JOB_BUFFER = b"".join(layouts.encode_job(job) for job in JOBS)


def sliced(records: list[bytes], part: DataSlice) -> bytes:
    return b"".join(data[part.offset : part.end] for data in records)


def test_a_thousand_full_jobs_decode_in_one_view() -> None:
    decoded = batch.decode_jobs(JOB_BUFFER)
    assert len(decoded) == 1_000
    assert np.array_equal(decoded["price"], np.arange(1_000, dtype=np.uint64) * 1_000)
    assert np.array_equal(decoded["time_end"], 1_700_000_000 + np.arange(1_000))
    assert np.array_equal(decoded["timeout"], -np.arange(1_000))
    assert decoded["state"].tolist() == [job.state for job in JOBS]
    assert {bytes(d) for d in decoded["discriminator"].tolist()} == {layouts.JOB_DISCRIMINATOR}
    for index in (0, 1, 257, 999):
        assert batch.pubkey_at(decoded, index, "payer") == JOBS[index].payer
        assert batch.pubkey_at(decoded, index, "market") == JOBS[index].market
        assert decoded["ipfs_job"][index].tobytes() == JOBS[index].ipfs_job


def test_done_job_slice_keeps_only_the_fields_inside_it() -> None:
    records = [layouts.encode_job(job) for job in JOBS]
    decoded = batch.decode_jobs(sliced(records, DONE_JOB_SLICE), DONE_JOB_SLICE)
    assert decoded.dtype.names == ("payer", "price", "project", "state", "time_end")
    assert decoded.dtype.itemsize == DONE_JOB_SLICE.length == 81
    assert len(decoded) == 1_000
    assert batch.pubkey_at(decoded, 42, "payer") == JOBS[42].payer
    assert int(decoded["time_end"][42]) == JOBS[42].time_end
    with pytest.raises(ValueError, match="no field of name market"):
        decoded["market"]


def test_a_slice_cutting_through_a_field_leaves_that_field_out() -> None:
    # [140, 220): starts inside payer, ends inside time_start.
    part = DataSlice(140, 80)
    assert batch.job_dtype(part).names == ("price", "project", "state", "time_end")


def test_a_single_field_slice() -> None:
    part = DataSlice(layouts.JobOffset.STATE, 1)
    records = [layouts.encode_job(job) for job in JOBS[:9]]
    decoded = batch.decode_jobs(sliced(records, part), part)
    assert decoded.dtype.names == ("state",)
    assert decoded["state"].tolist() == [0, 2, 3] * 3


def test_runs_decode_in_one_view() -> None:
    runs = [
        RunAccount(
            job=JOBS[index].payer,
            node=Pubkey.from_bytes(bytes([255 - index]) * 32),
            payer=JOBS[index].payer,
            state=0,
            time=1_700_000_000 + index,
        )
        for index in range(50)
    ]
    decoded = batch.decode_runs(b"".join(layouts.encode_run(run) for run in runs))
    assert decoded.dtype.names == ("discriminator", "job", "node", "payer", "state", "time")
    assert len(decoded) == 50
    for index, run in enumerate(runs):
        assert batch.pubkey_at(decoded, index, "job") == run.job
        assert batch.pubkey_at(decoded, index, "node") == run.node
        assert int(decoded["time"][index]) == run.time


def test_run_job_slice_for_matching_runs_to_jobs() -> None:
    part = DataSlice(layouts.RunOffset.JOB, 32)
    run = RunAccount(JOBS[7].payer, Pubkey.default(), Pubkey.default(), 0, 0)
    decoded = batch.decode_runs(layouts.encode_run(run)[part.offset : part.end], part)
    assert decoded.dtype.names == ("job",)
    assert batch.pubkey_at(decoded, 0, "job") == run.job


@pytest.mark.parametrize("extra", [1, 239, -1])
def test_a_buffer_that_is_not_whole_records_is_a_decode_error(extra: int) -> None:
    buffer = JOB_BUFFER[: 240 * 3 + extra]
    with pytest.raises(DecodeError, match="not a whole number of 240-byte records"):
        batch.decode_jobs(buffer)


def test_a_legacy_job_in_a_full_job_batch_is_a_decode_error() -> None:
    legacy = layouts.encode_job(dataclasses.replace(JOBS[0], timeout=None))
    with pytest.raises(DecodeError):
        batch.decode_jobs(legacy)


def test_a_sliced_buffer_must_be_whole_slices() -> None:
    with pytest.raises(DecodeError, match="81-byte records"):
        batch.decode_jobs(bytes(81 * 2 + 1), DONE_JOB_SLICE)


@pytest.mark.parametrize("part", [FULL_JOB, DONE_JOB_SLICE])
def test_an_empty_buffer_is_an_empty_array_with_the_fields(part: DataSlice) -> None:
    decoded = batch.decode_jobs(b"", part)
    assert len(decoded) == 0
    assert decoded.dtype == batch.job_dtype(part)


def test_an_empty_run_buffer() -> None:
    assert len(batch.decode_runs(b"", FULL_RUN)) == 0


def test_a_zero_length_slice_has_no_fields() -> None:
    decoded = batch.decode_jobs(b"", DataSlice(0, 0))
    assert len(decoded) == 0
    assert decoded.dtype.names == ()


def test_decoded_arrays_are_views_not_copies() -> None:
    # A scan of a million jobs must not build a million Python objects or copy the bytes.
    decoded = batch.decode_jobs(JOB_BUFFER)
    assert not decoded.flags.owndata
    assert not decoded.flags.writeable
