"""The counted transaction size equals the serialized solders Transaction, byte for byte."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from solders.instruction import AccountMeta, Instruction
from task_factories import KEEPER, key

from keeper.tasks.txsize import Draft, measure, shortvec_len


def test_shortvec_boundaries() -> None:
    assert [shortvec_len(v) for v in (0, 127, 128, 16_383, 16_384)] == [1, 1, 2, 2, 3]


INSTRUCTIONS = st.builds(
    lambda program, metas, data: Instruction(key(f"program {program}"), data, metas),
    st.integers(0, 2),
    st.lists(
        st.builds(
            AccountMeta,
            st.integers(0, 30).map(lambda i: key(f"account {i}")),
            st.booleans(),
            st.booleans(),
        ),
        max_size=10,
    ),
    st.binary(max_size=200),
)


@given(st.lists(INSTRUCTIONS, min_size=1, max_size=8), st.sampled_from(["legacy", "v0"]))
def test_counted_size_is_the_measured_size(ixs: list[Instruction], version) -> None:
    draft = Draft(KEEPER, version)
    predicted = draft.size_with(ixs)
    for ix in ixs:
        draft.add(ix)
    size, signatures = measure(ixs, KEEPER, version)
    assert predicted == draft.size() == size
    assert signatures == len(draft.signers)


def test_v0_costs_two_bytes_more() -> None:
    ix = Instruction(key("program"), b"x", [AccountMeta(key("a"), False, True)])
    assert measure([ix], KEEPER, "v0")[0] == measure([ix], KEEPER)[0] + 2
