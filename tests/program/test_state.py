"""JobState and QueueType hold the bytes the program writes, not the IDL's enum order."""

from __future__ import annotations

from typing import Any

import pytest

from keeper.program.state import JobState, QueueType


def variants(idl: dict[str, Any], enum_name: str) -> list[str]:
    (enum,) = (kind for kind in idl["types"] if kind["name"] == enum_name)
    return [variant["name"] for variant in enum["type"]["variants"]]


def test_job_state_values_are_the_stored_bytes() -> None:
    assert JobState.QUEUED.value == 0
    assert JobState.DONE.value == 2
    assert JobState.STOPPED.value == 3
    assert [state.value for state in JobState] == [0, 2, 3]
    assert bytes([JobState.DONE]) == b"\x02"  # the byte a memcmp filter compares


def test_idl_enum_order_would_wrongly_suggest_done_1_and_stopped_2(
    reference_idl: dict[str, Any],
) -> None:
    """Why JobState is not taken from the IDL.

    The published IDL lists JobState as Queued, Done, Stopped, so its positions are 0, 1, 2.
    The program's Rust enum has explicit discriminants and stores ``JobState::Done as u8``:
    Done is 2 and Stopped is 3 on chain (1 was "Running", written only before 2023). A
    keeper that filtered on the IDL positions would look for Done jobs at byte 1, find
    none, and look for Stopped jobs among the Done ones.
    """
    order = variants(reference_idl, "JobState")
    assert order == ["Queued", "Done", "Stopped"]
    idl_positions = {name: position for position, name in enumerate(order)}
    stored = {state.name.title(): state.value for state in JobState}
    assert idl_positions["Queued"] == stored["Queued"] == 0
    assert idl_positions["Done"] == 1 != stored["Done"] == 2
    assert idl_positions["Stopped"] == 2 != stored["Stopped"] == 3


def test_queue_type_values_are_the_stored_bytes() -> None:
    assert QueueType.JOB.value == 0
    assert QueueType.NODE.value == 1
    assert QueueType.EMPTY.value == 255


def test_queue_type_empty_is_255_not_its_idl_position(reference_idl: dict[str, Any]) -> None:
    """The IDL lists QueueType Job, Node, Empty (positions 0, 1, 2); Empty is stored as 255."""
    order = variants(reference_idl, "QueueType")
    assert order == ["Job", "Node", "Empty"]
    idl_position = order.index("Empty")
    assert idl_position == 2
    assert QueueType.EMPTY.value != idl_position


@pytest.mark.parametrize(
    ("byte", "state"), [(0, JobState.QUEUED), (2, JobState.DONE), (3, JobState.STOPPED)]
)
def test_from_byte_reads_stored_states(byte: int, state: JobState) -> None:
    assert JobState.from_byte(byte) is state


@pytest.mark.parametrize("byte", [1, 4, 255])
def test_from_byte_returns_none_for_bytes_the_program_does_not_write(byte: int) -> None:
    # 1 ("Running") was written before 2023 only; such accounts are legacy 232-byte jobs.
    assert JobState.from_byte(byte) is None
