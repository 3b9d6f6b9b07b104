"""anchorpy's coders over the package's own IDL: the reference path.

The fast decoders in ``layouts``/``batch`` must agree with these (a property test checks).
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

from anchorpy.coder.accounts import AccountsCoder
from anchorpy.coder.instruction import InstructionCoder
from anchorpy_core.idl import Idl

from keeper.errors import DecodeError

JOBS_IDL_FILE = "nosana_jobs.json"
STAKING_IDL_FILE = "nosana_staking.json"


def idl_text(filename: str = JOBS_IDL_FILE) -> str:
    return resources.files("keeper.program").joinpath("idl", filename).read_text("utf-8")


@cache
def jobs_idl() -> Idl:
    return Idl.from_json(idl_text(JOBS_IDL_FILE))


@cache
def staking_idl() -> Idl:
    return Idl.from_json(idl_text(STAKING_IDL_FILE))


@cache
def jobs_accounts_coder() -> AccountsCoder:
    return AccountsCoder(jobs_idl())


@cache
def staking_accounts_coder() -> AccountsCoder:
    return AccountsCoder(staking_idl())


@cache
def jobs_instruction_coder() -> InstructionCoder:
    return InstructionCoder(jobs_idl())


def decode_account(data: bytes, *, staking: bool = False) -> Any:  # noqa: ANN401 - anchorpy's Container
    """Decode through anchorpy; raises DecodeError for anything it cannot read."""
    coder = staking_accounts_coder() if staking else jobs_accounts_coder()
    try:
        return coder.decode(data)
    except Exception as error:  # anchorpy raises construct and KeyError alike
        raise DecodeError(f"anchorpy could not decode the account: {error}") from error


def instruction_data(name: str) -> bytes:
    """The data of a maintenance instruction: its 8-byte sighash (they take no args)."""
    return bytes(jobs_instruction_coder().encode(name, {}))
