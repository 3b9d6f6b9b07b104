"""Keypair files: every way they can be wrong names the file and the fix, never the key."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from keeper.chain.keypair import load_keypair, run_keypair
from keeper.errors import KeypairError

KEYPAIR = Keypair.from_seed(bytes(range(32)))
SECRET_NUMBERS = list(bytes(KEYPAIR))


def write(tmp_path: Path, content: str) -> Path:
    path = tmp_path / "id.json"
    path.write_text(content)
    return path


def assert_no_key_material(error: KeypairError) -> None:
    text = f"{error} {error.hint} {error.__cause__!r} {error.__context__!r}"
    assert json.dumps(SECRET_NUMBERS[:8])[1:-1] not in text
    assert str(KEYPAIR.pubkey()) not in text
    assert error.__cause__ is None


def test_a_solana_cli_file_loads(tmp_path: Path) -> None:
    path = write(tmp_path, json.dumps(SECRET_NUMBERS))
    assert load_keypair(path).pubkey() == KEYPAIR.pubkey()
    assert load_keypair(str(path)).pubkey() == KEYPAIR.pubkey()


def test_a_home_relative_path_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    write(tmp_path, json.dumps(SECRET_NUMBERS))
    assert load_keypair("~/id.json").pubkey() == KEYPAIR.pubkey()


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(KeypairError, match="does not exist") as caught:
        load_keypair(tmp_path / "nope.json")
    assert "solana-keygen new" in caught.value.hint
    assert str(tmp_path / "nope.json") in str(caught.value)


def test_a_directory(tmp_path: Path) -> None:
    with pytest.raises(KeypairError, match="is a directory"):
        load_keypair(tmp_path)


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, json.dumps(SECRET_NUMBERS))

    def denied(self: Path, encoding: str | None = None) -> str:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_text", denied)
    with pytest.raises(KeypairError, match="not readable") as caught:
        load_keypair(path)
    assert "permission" in caught.value.hint


def test_not_json(tmp_path: Path) -> None:
    text = json.dumps(SECRET_NUMBERS)[:-1]  # the closing bracket is missing
    with pytest.raises(KeypairError, match="is not JSON") as caught:
        load_keypair(write(tmp_path, text))
    assert_no_key_material(caught.value)


def test_base58_text_is_not_json(tmp_path: Path) -> None:
    with pytest.raises(KeypairError, match="is not JSON") as caught:
        load_keypair(write(tmp_path, str(KEYPAIR)))
    assert str(KEYPAIR) not in str(caught.value)


def test_not_a_list(tmp_path: Path) -> None:
    with pytest.raises(KeypairError, match="JSON dict, not a list"):
        load_keypair(write(tmp_path, json.dumps({"secret": SECRET_NUMBERS})))


@pytest.mark.parametrize("length", [0, 32, 63, 65])
def test_wrong_length(tmp_path: Path, length: int) -> None:
    numbers = (SECRET_NUMBERS * 2)[:length]
    with pytest.raises(KeypairError, match=f"holds {length} numbers, expected 64") as caught:
        load_keypair(write(tmp_path, json.dumps(numbers)))
    assert_no_key_material(caught.value)


@pytest.mark.parametrize("bad", [256, -1, 1.5, "7", True, None])
def test_numbers_out_of_range(tmp_path: Path, bad: object) -> None:
    numbers: list[object] = list(SECRET_NUMBERS)
    numbers[10] = bad
    with pytest.raises(
        KeypairError, match="not integers 0-255 \\(first at position 10\\)"
    ) as caught:
        load_keypair(write(tmp_path, json.dumps(numbers)))
    assert_no_key_material(caught.value)


def test_secret_and_public_halves_that_do_not_match(tmp_path: Path) -> None:
    other = Keypair.from_seed(bytes([9] * 32))
    numbers = SECRET_NUMBERS[:32] + list(bytes(other.pubkey()))
    with pytest.raises(KeypairError, match="does not match") as caught:
        load_keypair(write(tmp_path, json.dumps(numbers)))
    assert_no_key_material(caught.value)
    assert str(other.pubkey()) not in str(caught.value)


# --- the run account a claim creates ---------------------------------------------------------

keys = st.binary(min_size=32, max_size=32).map(Keypair.from_seed)
pubkeys = st.binary(min_size=32, max_size=32).map(Pubkey.from_bytes)


@given(node=keys, job=pubkeys)
def test_a_claims_run_keypair_is_the_same_every_time(node: Keypair, job: Pubkey) -> None:
    again = Keypair.from_bytes(bytes(node))  # the same key loaded again (a restart)
    assert run_keypair(node, job) == run_keypair(again, job)


@given(node=keys, jobs=st.lists(pubkeys, min_size=2, max_size=5, unique=True))
def test_each_job_gets_its_own_run_account(node: Keypair, jobs: list[Pubkey]) -> None:
    runs = {run_keypair(node, job).pubkey() for job in jobs}
    assert len(runs) == len(jobs)
    assert node.pubkey() not in runs
    assert not runs & set(jobs)


@given(nodes=st.lists(keys, min_size=2, max_size=4, unique_by=bytes), job=pubkeys)
def test_each_node_gets_its_own_run_account(nodes: list[Keypair], job: Pubkey) -> None:
    assert len({run_keypair(node, job).pubkey() for node in nodes}) == len(nodes)


def test_the_derivation_is_pinned() -> None:
    """A change of derivation would let a restarted keeper claim again: it must be deliberate."""
    node = Keypair.from_seed(bytes(range(32)))
    job = Pubkey.from_bytes(bytes(range(32, 64)))
    seed = hashlib.sha256(b"nosana-keeper/claim-run/v1\x00" + bytes(range(32)) + bytes(job))
    assert run_keypair(node, job) == Keypair.from_seed(seed.digest())
