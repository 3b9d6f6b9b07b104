"""Solana's TransactionError / InstructionError as JSON, and their display strings.

The JSON shapes are those RPC nodes return (``"BlockhashNotFound"``,
``{"InstructionError": [0, {"Custom": 6005}]}``) and solders parses; the display
strings are the ones nodes put in ``-32002`` messages and program logs.
"""

from __future__ import annotations

from typing import Final, cast

TransactionErrorJson = str | dict[str, object]

BLOCKHASH_NOT_FOUND: Final = "BlockhashNotFound"
ALREADY_PROCESSED: Final = "AlreadyProcessed"
ACCOUNT_NOT_FOUND: Final = "AccountNotFound"
INSUFFICIENT_FUNDS_FOR_FEE: Final = "InsufficientFundsForFee"
PROGRAM_ACCOUNT_NOT_FOUND: Final = "ProgramAccountNotFound"
ADDRESS_LOOKUP_TABLE_NOT_FOUND: Final = "AddressLookupTableNotFound"
SANITIZE_FAILURE: Final = "SanitizeFailure"
SIGNATURE_FAILURE: Final = "SignatureFailure"
ACCOUNT_LOADED_TWICE: Final = "AccountLoadedTwice"

_TRANSACTION_ERROR_TEXT: Final[dict[str, str]] = {
    BLOCKHASH_NOT_FOUND: "Blockhash not found",
    ALREADY_PROCESSED: "This transaction has already been processed",
    ACCOUNT_NOT_FOUND: "Attempt to debit an account but found no record of a prior credit.",
    INSUFFICIENT_FUNDS_FOR_FEE: "Insufficient funds for fee",
    PROGRAM_ACCOUNT_NOT_FOUND: "Attempt to load a program that does not exist",
    ADDRESS_LOOKUP_TABLE_NOT_FOUND: (
        "Transaction loads an address table account that doesn't exist"
    ),
    SANITIZE_FAILURE: "Transaction failed to sanitize accounts offsets correctly",
    SIGNATURE_FAILURE: "Transaction did not pass signature verification",
    ACCOUNT_LOADED_TWICE: "Account loaded twice",
}

_INSTRUCTION_ERROR_TEXT: Final[dict[str, str]] = {
    "ComputationalBudgetExceeded": "Computational budget exceeded",
    "MissingRequiredSignature": "missing required signature for instruction",
    "InvalidInstructionData": "invalid instruction data",
    "InvalidArgument": "invalid program argument",
    "InvalidAccountData": "invalid account data for instruction",
    "NotEnoughAccountKeys": "insufficient account keys for instruction",
    "ReadonlyDataModified": "instruction modified data of a read-only account",
    "ReadonlyLamportChange": "instruction changed the balance of a read-only account",
    "ExternalAccountDataModified": "instruction modified data of an account it does not own",
    "ExternalAccountLamportSpend": (
        "instruction spent from the balance of an account it does not own"
    ),
    "UnbalancedInstruction": ("sum of account balances before and after instruction do not match"),
    "IncorrectProgramId": "incorrect program id for instruction",
    "ExecutableModified": "instruction changed executable bit of an account",
}


def instruction_error(index: int, error: int | str) -> dict[str, object]:
    """``{"InstructionError": [index, {"Custom": n}]}`` or ``[index, "BuiltinName"]``."""
    detail: object = {"Custom": error} if isinstance(error, int) else error
    return {"InstructionError": [index, detail]}


def describe_instruction_error(error: int | str) -> str:
    if isinstance(error, int):
        return f"custom program error: {error:#x}"
    return _INSTRUCTION_ERROR_TEXT.get(error, error)


def describe(err: TransactionErrorJson) -> str:
    """The text Solana's Display gives the error (used in -32002 messages)."""
    if isinstance(err, str):
        return _TRANSACTION_ERROR_TEXT.get(err, err)
    if "InstructionError" in err:
        index, detail = cast("list[object]", err["InstructionError"])
        inner = int(detail["Custom"]) if isinstance(detail, dict) else str(detail)
        return f"Error processing Instruction {index}: {describe_instruction_error(inner)}"
    if "DuplicateInstruction" in err:
        index = err["DuplicateInstruction"]
        return f"Transaction contains a duplicate instruction ({index}) that is not allowed"
    return str(err)


class TransactionRejected(Exception):
    """The transaction fails as a whole before execution: it never lands, costs nothing."""

    def __init__(self, err: TransactionErrorJson) -> None:
        super().__init__(describe(err))
        self.err = err
