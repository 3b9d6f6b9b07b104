"""One error hierarchy for the whole keeper. Every error names the problem and its fix.

Library exceptions are mapped to these at the I/O edge (``raise ... from e``); the CLI
catches ``KeeperError`` once and prints ``error: ...`` and ``fix: ...``.
"""

from __future__ import annotations


class KeeperError(Exception):
    """Base class. ``hint`` says what the operator should do about it."""

    hint: str = "see the README's troubleshooting section"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint


class ConfigError(KeeperError):
    hint = "correct the setting in the YAML file, the KEEPER_* environment or the CLI flag"


class KeypairError(KeeperError):
    hint = "point KEEPER_KEYPAIR at a Solana CLI JSON keypair file (64 numbers)"


class DecodeError(KeeperError):
    hint = "the account is not of the expected kind or layout; it is skipped and counted"


class RpcError(KeeperError):
    hint = "check KEEPER_RPC_URL and that the RPC node is reachable and healthy"


class RpcRateLimited(RpcError):
    hint = "lower rpc.requests_per_second or use an RPC plan with a higher limit"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RpcServerError(RpcError):
    pass


class RpcTimeout(RpcError):
    hint = "raise rpc.timeout_seconds or use a faster RPC node"


class RpcResponseError(RpcError):
    """The node answered with a JSON-RPC error object or an unexpected shape."""

    def __init__(self, message: str, *, code: int | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.code = code


class FeedLost(RpcError):
    """The websocket closed, stalled or refused us; reconnect and resync."""

    hint = "check rpc.ws_url and that the node serves websockets; the keeper polls meanwhile"


class TransactionError(KeeperError):
    hint = "the transaction was not applied; the next pass re-checks the accounts"


class BlockhashExpired(TransactionError):
    pass


class InstructionFailed(TransactionError):
    """The program rejected instruction ``index`` with ``code`` (names: every candidate)."""

    def __init__(self, index: int, code: int | None, names: tuple[str, ...]) -> None:
        label = "/".join(names) if names else "unknown"
        super().__init__(f"instruction {index} failed with {code} ({label})")
        self.index = index
        self.code = code
        self.names = names


class SafetyViolation(KeeperError):
    """A plan broke an invariant. Raised before signing; this is always a bug."""

    hint = "this is a bug in nosana-keeper: nothing was signed; please report it"
