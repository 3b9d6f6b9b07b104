"""Names for the custom error codes the program can return.

Three enums all start at 6000 (jobs, the shared Nosana enum, staking), so a code alone
is ambiguous: prefer the name from the log line ``Error Code: <Name>``; otherwise every
candidate is returned.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Iterable

ACCOUNT_NOT_INITIALIZED: Final = 3012
ACCOUNT_DID_NOT_DESERIALIZE: Final = 3003
# The System program's own errors, raised through the CPI of a claim's `init` of the run.
ACCOUNT_ALREADY_IN_USE: Final = 0

SYSTEM_ERRORS: Final[dict[int, str]] = {
    ACCOUNT_ALREADY_IN_USE: "AccountAlreadyInUse",
    1: "ResultWithNegativeLamports",
}

ANCHOR_ERRORS: Final[dict[int, str]] = {
    100: "InstructionMissing",
    101: "InstructionFallbackNotFound",
    102: "InstructionDidNotDeserialize",
    2000: "ConstraintMut",
    2001: "ConstraintHasOne",
    2002: "ConstraintSigner",
    2003: "ConstraintRaw",
    2004: "ConstraintOwner",
    2005: "ConstraintRentExempt",
    2006: "ConstraintSeeds",
    2007: "ConstraintExecutable",
    2009: "ConstraintAssociated",
    2011: "ConstraintClose",
    2012: "ConstraintAddress",
    3001: "AccountDiscriminatorNotFound",
    3002: "AccountDiscriminatorMismatch",
    3003: "AccountDidNotDeserialize",
    3004: "AccountDidNotSerialize",
    3005: "AccountNotEnoughKeys",
    3006: "AccountNotMutable",
    3007: "AccountOwnedByWrongProgram",
    3008: "InvalidProgramId",
    3009: "InvalidProgramExecutable",
    3010: "AccountNotSigner",
    3011: "AccountNotSystemOwned",
    3012: "AccountNotInitialized",
    3013: "AccountNotProgramData",
    3014: "AccountNotAssociatedTokenAccount",
}

JOBS_ERRORS: Final = (
    "InvalidMarketAccount",
    "MarketInWrongState",
    "NotInMarketQueue",
    "InvalidJobAccount",
    "JobInWrongState",
    "JobNotExpired",
    "JobResultNull",
    "JobInvalidProject",
    "JobTimeoutNotGreater",
    "JobInvalidRunAccount",
    "JobResultsAlreadySet",
    "NodeQueueDoesNotMatch",
    "NodeStakeUnauthorized",
    "NodeNotEnoughStake",
    "NodeAlreadyQueued",
    "NodeNftWrongMetadata",
    "NodeNftWrongOwner",
    "NodeNftInvalidAmount",
    "NodeKeyInvalidCollection",
)

NOSANA_ERRORS: Final = (
    "Unauthorized",
    "InvalidOwner",
    "LamportsNonNull",
    "MissingSignature",
    "InvalidAccount",
    "InvalidTokenAccount",
    "InvalidMint",
    "InvalidVault",
    "InvalidPayer",
    "VaultEmpty",
    "VaultNotEmpty",
    "InvalidATA",
)

STAKING_ERRORS: Final = (
    "AmountNotEnough",
    "AlreadyInitialized",
    "AlreadyClaimed",
    "AlreadyStaked",
    "AlreadyUnstaked",
    "NotUnstaked",
    "Locked",
    "DurationTooShort",
    "DurationTooLong",
    "DoesNotExist",
    "Decreased",
    "HasReward",
    "InvalidStakeAccount",
)

CUSTOM_ERROR_BASE: Final = 6000

_LOG_NAME = re.compile(r"Error Code: (\w+)")


def _custom_candidates(code: int) -> tuple[str, ...]:
    position = code - CUSTOM_ERROR_BASE
    return tuple(
        enum[position]
        for enum in (JOBS_ERRORS, NOSANA_ERRORS, STAKING_ERRORS)
        if 0 <= position < len(enum)
    )


def error_names(code: int, logs: Iterable[str] = ()) -> tuple[str, ...]:
    """The name(s) of ``code``: the one the program logged, else every candidate."""
    for line in logs:
        match = _LOG_NAME.search(line)
        if match:
            return (match.group(1),)
    if code >= CUSTOM_ERROR_BASE:
        return _custom_candidates(code)
    name = ANCHOR_ERRORS.get(code) or SYSTEM_ERRORS.get(code)
    return (name,) if name else ()


def error_code(name: str) -> int:
    """The code of a named error (first enum that has it: jobs, Nosana, staking, Anchor)."""
    for enum in (JOBS_ERRORS, NOSANA_ERRORS, STAKING_ERRORS):
        if name in enum:
            return CUSTOM_ERROR_BASE + enum.index(name)
    for code, anchor_name in ANCHOR_ERRORS.items():
        if anchor_name == name:
            return code
    raise KeyError(name)
