"""How an Anchor 1.0 program loads and checks its accounts, as the local chain models it.

Anchor's generated ``try_accounts`` first *deserializes* every account in declaration
order (``Account<T>``: exists, owner, discriminator, Borsh; ``Signer``: signed;
``Program<T>``: key and executable), then runs ``init`` fields, then each field's
constraints in Anchor's fixed order: ``mut``, ``has_one``, ``constraint``, ``close``,
``address``. The first failure ends the instruction. The helpers here raise
``Rejection`` carrying exactly the log lines Anchor writes for that failure, so the
program model only has to call them in the program's own order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from keeper.localnet.model import AccountRef, ProgramFailure
from keeper.program.error_codes import error_code
from keeper.program.ids import SYSTEM_PROGRAM

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from solders.pubkey import Pubkey

    from keeper.localnet.model import Account

DISCRIMINATOR_LEN: Final = 8

# Anchor's own codes missing from keeper.program.error_codes (it lists what a keeper meets).
_EXTRA_CODES: Final = {"EventInstructionStub": 1500, "TryingToInitPayerAsProgramAccount": 4101}

# The `#[msg(...)]` texts, verbatim from anchor-lang 1.0.2 and the Nosana sources. Anchor
# logs "Error Message: {msg}." so messages that end in "." are logged with "..".
MESSAGES: Final[dict[str, str]] = {
    "InstructionFallbackNotFound": "Fallback functions are not supported",
    "EventInstructionStub": "The program was compiled without `event-cpi` feature",
    "ConstraintMut": "A mut constraint was violated",
    "ConstraintSigner": "A signer constraint was violated",
    "ConstraintRentExempt": "A rent exemption constraint was violated",
    "ConstraintClose": "A close constraint was violated",
    "AccountDiscriminatorNotFound": "No discriminator was found on the account",
    "AccountDiscriminatorMismatch": "Account discriminator did not match what was expected",
    "AccountDidNotDeserialize": "Failed to deserialize the account",
    "AccountNotEnoughKeys": "Not enough account keys given to the instruction",
    "AccountOwnedByWrongProgram": "The given account is owned by a different program than expected",
    "InvalidProgramId": "Program ID was not as expected",
    "InvalidProgramExecutable": "Program account is not executable",
    "AccountNotSigner": "The given account did not sign",
    "AccountNotInitialized": "The program expected this account to be already initialized",
    "TryingToInitPayerAsProgramAccount": (
        "You cannot/should not initialize the payer account as a program account"
    ),
    # nosana-jobs NosanaJobsError
    "InvalidMarketAccount": "This market account is not valid.",
    "JobInWrongState": "This job does not have the right status.",
    "JobNotExpired": "The job has not yet expired.",
    "NodeNotEnoughStake": "This node has not staked enough tokens.",
    "NodeNftWrongOwner": "This NFT is not owned by this node.",
    "NodeNftInvalidAmount": "Access NFT amount cannot be 0.",
    "NodeKeyInvalidCollection": "This access key does not belong to a verified collection.",
    # nosana-common NosanaError
    "Unauthorized": "This account is not authorized to perform this action.",
    "InvalidPayer": "This payer account is not valid.",
    # nosana-staking NosanaStakingError
    "InvalidStakeAccount": "This stake does not belong to the authority.",
}

# solana ProgramError: (number as u64, Display text). Anchor logs these for errors that
# come from a library (spl-token's unpack) rather than from an Anchor error code.
_PROGRAM_ERRORS: Final = {
    "InvalidAccountData": (4 << 32, "An account's data contents was invalid"),
    "UninitializedAccount": (
        10 << 32,
        "An attempt to operate on an account that hasn't been initialized",
    ),
}


class Rejection(Exception):
    """The program stops: ``logs`` are its own log lines, ``failure`` what the runtime reports."""

    def __init__(self, failure: ProgramFailure, logs: Sequence[str]) -> None:
        super().__init__(failure.name)
        self.failure = failure
        self.logs = list(logs)


def _log(message: str) -> str:
    return f"Program log: {message}"


def anchor_error(
    name: str,
    *,
    account: str | None = None,
    pubkeys: tuple[Pubkey, Pubkey] | None = None,
    source: str | None = None,
) -> Rejection:
    """An ``AnchorError`` with Anchor's log line (and the compared keys, when it has them)."""
    code = _EXTRA_CODES.get(name) or error_code(name)
    if account is not None:
        origin = f"caused by account: {account}"
    elif source is not None:
        origin = f"thrown in {source}"
    else:
        origin = "occurred"
    logs = [
        _log(
            f"AnchorError {origin}. Error Code: {name}. Error Number: {code}. "
            f"Error Message: {MESSAGES[name]}."
        )
    ]
    if pubkeys is not None:
        left, right = pubkeys
        logs += [_log("Left:"), _log(str(left)), _log("Right:"), _log(str(right))]
    return Rejection(ProgramFailure(name, custom=code), logs)


def program_error(name: str, *, account: str) -> Rejection:
    """A library ``ProgramError`` surfacing through Anchor (reported as a built-in error)."""
    number, text = _PROGRAM_ERRORS[name]
    line = (
        f"ProgramError caused by account: {account}. Error Code: {name}. "
        f"Error Number: {number}. Error Message: {text}."
    )
    return Rejection(ProgramFailure(name, builtin=name), [_log(line)])


# --- deserialization phase ----------------------------------------------------------------


def take(accounts: Sequence[AccountRef], index: int, field: str | None) -> AccountRef:
    """The ``index``-th account, or AccountNotEnoughKeys as Anchor reports it for ``field``."""
    if index >= len(accounts):
        raise anchor_error("AccountNotEnoughKeys", account=field)
    return accounts[index]


def exists(account: Account | None) -> bool:
    """False for what Anchor sees as uninitialized: no lamports and owned by the system program."""
    return account is not None and not (account.lamports == 0 and account.owner == SYSTEM_PROGRAM)


def owner_of(account: Account | None) -> Pubkey:
    return SYSTEM_PROGRAM if account is None else account.owner


@dataclass(frozen=True, slots=True)
class AnchorAccount:
    """What ``Account<'info, T>`` requires of an account of type ``T``.

    ``borsh_len`` returns how many bytes Borsh reads for this data (after the discriminator
    check), or None when the data cannot be read at all (e.g. a queue length overrunning).
    """

    owner: Pubkey
    discriminator: bytes
    borsh_len: Callable[[bytes], int | None]


def load(ref: AccountRef, field: str, kind: AnchorAccount) -> bytes:
    """``Account::try_from``: exists (3012), owner (3007), discriminator (3001/3002), Borsh 3003."""
    account = ref.account
    if account is None or not exists(account):
        raise anchor_error("AccountNotInitialized", account=field)
    if account.owner != kind.owner:
        raise anchor_error(
            "AccountOwnedByWrongProgram", account=field, pubkeys=(account.owner, kind.owner)
        )
    data = account.data
    if len(data) < len(kind.discriminator):
        raise anchor_error("AccountDiscriminatorNotFound", account=field)
    if data[: len(kind.discriminator)] != kind.discriminator:
        raise anchor_error("AccountDiscriminatorMismatch", account=field)
    needed = kind.borsh_len(data)
    if needed is None or len(data) < needed:
        raise anchor_error("AccountDidNotDeserialize", account=field)
    return data


def require_signer(ref: AccountRef, field: str) -> None:
    """``Signer<'info>``: AccountNotSigner (3010)."""
    if not ref.is_signer:
        raise anchor_error("AccountNotSigner", account=field)


def require_program(ref: AccountRef, field: str, program_id: Pubkey) -> None:
    """``Program<'info, T>``: the key (3008), then executable (3009)."""
    if ref.key != program_id:
        raise anchor_error("InvalidProgramId", account=field, pubkeys=(ref.key, program_id))
    if ref.account is None or not ref.account.executable:
        raise anchor_error("InvalidProgramExecutable", account=field)


# --- constraints phase --------------------------------------------------------------------


def require_mut(ref: AccountRef, field: str) -> None:
    """``#[account(mut)]``: ConstraintMut (2000)."""
    if not ref.is_writable:
        raise anchor_error("ConstraintMut", account=field)


def require_has_one(field: str, stored: Pubkey, passed: Pubkey, error: str) -> None:
    """``has_one = target @ error``: the stored key must be the passed account's key."""
    if stored != passed:
        raise anchor_error(error, account=field, pubkeys=(stored, passed))


def require(condition: bool, field: str, error: str) -> None:
    """``constraint = <condition> @ error``."""
    if not condition:
        raise anchor_error(error, account=field)


def require_address(field: str, actual: Pubkey, expected: Pubkey, error: str) -> None:
    """``address = expected @ error``."""
    if actual != expected:
        raise anchor_error(error, account=field, pubkeys=(actual, expected))


def require_close_target(field: str, key: Pubkey, destination: Pubkey) -> None:
    """``close = destination``: an account cannot be closed into itself (2011)."""
    if key == destination:
        raise anchor_error("ConstraintClose", account=field)
