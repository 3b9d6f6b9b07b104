"""The package's own IDL against Nosana's published one, and its discriminators.

The package IDL is written from the facts page; Nosana's published IDL (beside the facts
page) is the outside reference. For the four maintenance instructions, the three
accounts and the error enum they must say the same thing, field by field. The
comparisons skip, saying why, when the published file is not there.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from keeper.program import layouts
from keeper.program.anchor import (
    idl_text,
    instruction_data,
    jobs_accounts_coder,
    jobs_idl,
    staking_accounts_coder,
)
from keeper.program.ids import MAINNET, STAKING_PROGRAM
from keeper.program.instructions import MaintenanceInstruction, discriminator

MAINTENANCE = ["clean", "cleanAdmin", "quitAdmin", "claim"]
ACCOUNTS = ["MarketAccount", "JobAccount", "RunAccount"]

# From the facts page (program-facts.md): sha256("account:<Name>")[:8] and
# sha256("global:<snake_name>")[:8], checked there against the program.
FACTS_ACCOUNT_DISCRIMINATORS = {
    "JobAccount": "5b10a2052dd27d41",
    "RunAccount": "c2a96ee6eb0be116",
    "MarketAccount": "c94ebbe1f0c6c9fb",
}
FACTS_STAKE_DISCRIMINATOR = "509e437c32bdc0ff"
FACTS_INSTRUCTION_DISCRIMINATORS = {
    "clean": "fabf388096fb0167",
    "cleanAdmin": "f55abc44fdebab69",
    "quitAdmin": "67ee6e08b61438c4",
    "claim": "3ec6d6c1d59f6cd2",
}


def by_name(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in items}


def by_folded_name(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["name"].casefold(): item for item in items}


# --- the package IDL on its own ------------------------------------------------------


def test_package_idl_has_exactly_the_four_maintenance_instructions(
    package_idl: dict[str, Any],
) -> None:
    assert [ix["name"] for ix in package_idl["instructions"]] == MAINTENANCE


def test_package_idl_has_the_three_accounts_named_as_the_rust_types(
    package_idl: dict[str, Any],
) -> None:
    assert [account["name"] for account in package_idl["accounts"]] == ACCOUNTS


def test_package_idl_is_for_the_mainnet_program(package_idl: dict[str, Any]) -> None:
    assert package_idl["metadata"]["address"] == str(MAINNET.jobs_program)


def test_package_idl_loads_in_anchorpy() -> None:
    idl = jobs_idl()
    assert [ix.name for ix in idl.instructions] == MAINTENANCE


# --- discriminators through anchorpy equal the facts page ----------------------------


@pytest.mark.parametrize("name", ACCOUNTS)
def test_account_discriminators_from_the_idl_equal_the_facts_page(name: str) -> None:
    coder = jobs_accounts_coder()
    assert coder.acc_name_to_discriminator[name].hex() == FACTS_ACCOUNT_DISCRIMINATORS[name]


def test_stake_discriminator_from_the_staking_idl_equals_the_facts_page() -> None:
    coder = staking_accounts_coder()
    assert coder.acc_name_to_discriminator["StakeAccount"].hex() == FACTS_STAKE_DISCRIMINATOR
    assert layouts.STAKE_DISCRIMINATOR.hex() == FACTS_STAKE_DISCRIMINATOR


def test_layout_discriminators_equal_the_facts_page() -> None:
    assert layouts.JOB_DISCRIMINATOR.hex() == FACTS_ACCOUNT_DISCRIMINATORS["JobAccount"]
    assert layouts.RUN_DISCRIMINATOR.hex() == FACTS_ACCOUNT_DISCRIMINATORS["RunAccount"]
    assert layouts.MARKET_DISCRIMINATOR.hex() == FACTS_ACCOUNT_DISCRIMINATORS["MarketAccount"]


@pytest.mark.parametrize("kind", list(MaintenanceInstruction))
def test_instruction_discriminators_from_the_idl_equal_the_facts_page(
    kind: MaintenanceInstruction,
) -> None:
    expected = FACTS_INSTRUCTION_DISCRIMINATORS[kind.value]
    assert instruction_data(kind.snake_name).hex() == expected
    assert discriminator(kind).hex() == expected
    # The same as hashing the Rust function name directly.
    assert hashlib.sha256(f"global:{kind.snake_name}".encode()).digest()[:8].hex() == expected


def test_account_names_are_pascal_case_because_the_discriminator_hashes_the_name() -> None:
    """Why the package IDL says ``JobAccount`` where the published one says ``jobAccount``.

    anchorpy (like Anchor) derives an account's discriminator from its IDL name:
    sha256("account:<name>")[:8]. The program hashes the Rust type name, JobAccount.
    With the published IDL's camelCase name the discriminator would match nothing on chain.
    """
    for name, expected in FACTS_ACCOUNT_DISCRIMINATORS.items():
        camel = name[0].lower() + name[1:]
        assert hashlib.sha256(f"account:{name}".encode()).digest()[:8].hex() == expected
        assert hashlib.sha256(f"account:{camel}".encode()).digest()[:8].hex() != expected


# --- compared with Nosana's published IDL --------------------------------------------


@pytest.mark.parametrize("name", MAINTENANCE)
def test_instruction_matches_the_reference(
    name: str, package_idl: dict[str, Any], reference_idl: dict[str, Any]
) -> None:
    ours = by_name(package_idl["instructions"])[name]
    reference = by_name(reference_idl["instructions"])[name]
    assert [account["name"] for account in ours["accounts"]] == [
        account["name"] for account in reference["accounts"]
    ], "account order"
    for position, (mine, theirs) in enumerate(
        zip(ours["accounts"], reference["accounts"], strict=True)
    ):
        where = f"{name}.accounts[{position}] {mine['name']}"
        assert mine["isMut"] == theirs["isMut"], f"{where}: isMut"
        assert mine["isSigner"] == theirs["isSigner"], f"{where}: isSigner"
        assert set(mine) <= {"name", "isMut", "isSigner", "docs"}, where
        assert set(theirs) <= {"name", "isMut", "isSigner", "docs"}, where
    assert ours["args"] == reference["args"] == []


@pytest.mark.parametrize("name", ACCOUNTS)
def test_account_fields_match_the_reference_ignoring_name_case(
    name: str, package_idl: dict[str, Any], reference_idl: dict[str, Any]
) -> None:
    ours = by_name(package_idl["accounts"])[name]
    reference = by_folded_name(reference_idl["accounts"])[name.casefold()]
    assert ours["type"]["kind"] == reference["type"]["kind"] == "struct"
    our_fields = [(field["name"], field["type"]) for field in ours["type"]["fields"]]
    their_fields = [(field["name"], field["type"]) for field in reference["type"]["fields"]]
    assert our_fields == their_fields


def test_reference_account_fields_use_no_idl_types(reference_idl: dict[str, Any]) -> None:
    """The package IDL omits ``types``: no account field refers to one (state is a u8)."""
    defined = {kind["name"] for kind in reference_idl["types"]}
    for account in reference_idl["accounts"]:
        for field in account["type"]["fields"]:
            assert not (isinstance(field["type"], dict) and field["type"].get("defined") in defined)


def test_errors_match_the_reference(
    package_idl: dict[str, Any], reference_idl: dict[str, Any]
) -> None:
    ours = [(error["code"], error["name"], error["msg"]) for error in package_idl["errors"]]
    theirs = [(error["code"], error["name"], error["msg"]) for error in reference_idl["errors"]]
    assert ours == theirs
    assert ours[4][:2] == (6004, "JobInWrongState")
    assert ours[5][:2] == (6005, "JobNotExpired")


def test_staking_idl_names_the_staking_program() -> None:
    assert json.loads(idl_text("nosana_staking.json"))["metadata"]["address"] == str(
        STAKING_PROGRAM
    )
