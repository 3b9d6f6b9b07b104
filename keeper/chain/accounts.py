"""Reading accounts by key: getMultipleAccounts in chunks of 100, getAccountInfo, getBalance."""

from __future__ import annotations

import binascii
import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from solders.pubkey import Pubkey

from keeper.chain.concurrency import gather_bounded
from keeper.errors import RpcResponseError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from keeper.chain.endpoints import Rpc
    from keeper.chain.scan import Commitment
    from keeper.program.filters import DataSliceParam

MAX_KEYS_PER_REQUEST: Final = 100  # the RPC's own limit for getMultipleAccounts
DEFAULT_CONCURRENCY: Final = 4


@dataclass(frozen=True, slots=True)
class RawAccount:
    """An account as the RPC returns it (``data`` decoded from base64)."""

    key: Pubkey
    lamports: int
    owner: Pubkey
    data: bytes
    executable: bool = False


def _config(commitment: Commitment, data_slice: DataSliceParam | None) -> dict[str, Any]:
    config: dict[str, Any] = {"encoding": "base64", "commitment": commitment}
    if data_slice is not None:
        config["dataSlice"] = dict(data_slice)
    return config


def parse_account(key: Pubkey, value: Any) -> RawAccount | None:  # noqa: ANN401 - parsed JSON
    """A ``RawAccount`` from one JSON account value (``None`` when it does not exist)."""
    if value is None:
        return None
    try:
        encoded, encoding = value["data"]
        data = binascii.a2b_base64(encoded)
        account = RawAccount(
            key=key,
            lamports=int(value["lamports"]),
            owner=Pubkey.from_string(value["owner"]),
            data=data,
            executable=bool(value.get("executable", False)),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise RpcResponseError(f"malformed account value for {key} ({error})") from error
    if encoding != "base64":
        raise RpcResponseError(f"account {key}: data in {encoding!r}, asked for base64")
    return account


async def _one_request(
    rpc: Rpc, keys: Sequence[Pubkey], config: dict[str, Any]
) -> list[RawAccount | None]:
    result = await rpc.call("getMultipleAccounts", [[str(k) for k in keys], config])
    values = result.get("value") if isinstance(result, dict) else None
    if not isinstance(values, list) or len(values) != len(keys):
        raise RpcResponseError(f"getMultipleAccounts: expected {len(keys)} values")
    return [parse_account(key, value) for key, value in zip(keys, values, strict=True)]


async def get_multiple_accounts(
    rpc: Rpc,
    keys: Sequence[Pubkey],
    *,
    commitment: Commitment = "confirmed",
    data_slice: DataSliceParam | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> list[RawAccount | None]:
    """The accounts at ``keys``, in order; ``None`` where nothing exists.

    Requests of 100 keys run ``concurrency`` at a time (the client's rate limit still
    applies to each). Any request's failure fails the whole call.
    """
    config = _config(commitment, data_slice)
    parts = [keys[i : i + MAX_KEYS_PER_REQUEST] for i in range(0, len(keys), MAX_KEYS_PER_REQUEST)]
    results = await gather_bounded(
        [functools.partial(_one_request, rpc, part, config) for part in parts], concurrency
    )
    return [account for result in results for account in result]


async def get_account(
    rpc: Rpc, key: Pubkey, *, commitment: Commitment = "confirmed"
) -> RawAccount | None:
    result = await rpc.call("getAccountInfo", [str(key), _config(commitment, None)])
    if not isinstance(result, dict) or "value" not in result:
        raise RpcResponseError("getAccountInfo: a result without a value")
    return parse_account(key, result["value"])


async def get_balance(rpc: Rpc, key: Pubkey, *, commitment: Commitment = "confirmed") -> int:
    """Lamports held by ``key`` (0 when the account does not exist)."""
    result = await rpc.call("getBalance", [str(key), {"commitment": commitment}])
    value = result.get("value") if isinstance(result, dict) else None
    if not isinstance(value, int):
        raise RpcResponseError("getBalance: a result without an integer value")
    return value
