"""Solana JSON-RPC methods about the cluster and accounts, and the registry of all methods.

Each method takes the ``Node`` and the call's ``Params`` and returns a JSON-ready value (or
a ``StreamedJson``), raising ``RpcMethodError`` for error answers. Shapes follow what
real nodes return and solana-py / solders parse (``{"context": {...}, "value": ...}``).
``commitment`` is accepted and ignored: every landed transaction is final at once.
Method-level faults act here (``fee_source_error``: getRecentPrioritizationFees answers a
JSON-RPC error); HTTP-level ones act in the server before any method runs.

getProgramAccounts counts the node's work in ``Node.stats``: every account of the program
is visited per call, whatever the filters. getProgramAccountsV2 (Helius' paginated
variant) pages through the program's accounts in a stable order: see its docstring.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Final

from keeper.localnet import rpc_control, rpc_transactions
from keeper.localnet.account_store import Cursor
from keeper.localnet.ledger import rent_exempt_minimum
from keeper.localnet.node import API_VERSION
from keeper.localnet.rpc_accounts import (
    ACCOUNT_ENCODINGS,
    StreamedJson,
    account_json,
    program_accounts,
    with_context,
)
from keeper.localnet.rpc_params import (
    BLOCK_NOT_AVAILABLE,
    INTERNAL_ERROR,
    Params,
    RpcMethodError,
    blockhash,
    invalid_params,
    pubkey,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from keeper.localnet.node import Node

    Handler = Callable[[Node, Params], object]

FEATURE_SET: Final = 1_416_569_292
MAX_MULTIPLE_ACCOUNTS: Final = 100
MAX_PRIORITIZATION_FEE_ADDRESSES: Final = 128
V2_DEFAULT_LIMIT: Final = 1_000
V2_MAX_LIMIT: Final = 10_000
FEE_SOURCE_FAULT_MESSAGE: Final = "Internal error: prioritization fee cache unavailable"


# -- cluster ----------------------------------------------------------------------------


def get_health(_node: Node, _params: Params) -> object:
    return "ok"


def get_version(_node: Node, _params: Params) -> object:
    return {"solana-core": API_VERSION, "feature-set": FEATURE_SET}


def get_genesis_hash(node: Node, _params: Params) -> object:
    return str(node.ledger.clock.genesis_hash)


def get_slot(node: Node, _params: Params) -> object:
    return node.ledger.clock.slot


def get_block_height(node: Node, _params: Params) -> object:
    return node.ledger.clock.block_height


def get_epoch_info(node: Node, _params: Params) -> object:
    clock = node.ledger.clock
    info = clock.epoch_info
    return {
        "absoluteSlot": clock.slot,
        "blockHeight": clock.block_height,
        "epoch": info.epoch,
        "slotIndex": info.slot_index,
        "slotsInEpoch": info.slots_in_epoch,
        "transactionCount": node.ledger.transaction_count,
    }


def get_latest_blockhash(node: Node, _params: Params) -> object:
    latest = node.ledger.clock.latest_blockhash
    return node.contextual(
        {
            "blockhash": str(latest.blockhash),
            "lastValidBlockHeight": latest.last_valid_block_height,
        },
    )


def is_blockhash_valid(node: Node, params: Params) -> object:
    value = blockhash(params.required(0, "blockhash"))
    return node.contextual(node.ledger.clock.is_blockhash_valid(value))


def get_block_time(node: Node, params: Params) -> object:
    slot = params.integer(0, "slot")
    timestamp = node.ledger.clock.block_time(slot)
    if timestamp is None:
        raise RpcMethodError(BLOCK_NOT_AVAILABLE, f"Block not available for slot {slot}")
    return timestamp


def get_minimum_balance_for_rent_exemption(_node: Node, params: Params) -> object:
    return rent_exempt_minimum(params.integer(0, "data length"))


def get_recent_prioritization_fees(node: Node, params: Params) -> object:
    if node.faults.fee_source_fails():
        raise RpcMethodError(INTERNAL_ERROR, FEE_SOURCE_FAULT_MESSAGE)
    if len(params):  # per-account fees are not modelled; the addresses are only checked
        for item in params.array(0, "addresses", max_items=MAX_PRIORITIZATION_FEE_ADDRESSES):
            pubkey(item)
    fees = node.prioritization_fees
    first_slot = node.ledger.clock.slot - len(fees) + 1
    return [
        {"slot": first_slot + index, "prioritizationFee": fee} for index, fee in enumerate(fees)
    ]


# -- accounts ---------------------------------------------------------------------------


def get_balance(node: Node, params: Params) -> object:
    return node.contextual(node.ledger.balance(pubkey(params.required(0, "pubkey"))))


def get_account_info(node: Node, params: Params) -> object:
    key = pubkey(params.required(0, "pubkey"))
    config = params.config(1)
    encoding = config.choice("encoding", ACCOUNT_ENCODINGS, "base58")
    account = node.ledger.get(key)
    value = None if account is None else account_json(account, encoding, config.data_slice())
    return node.contextual(value)


def get_multiple_accounts(node: Node, params: Params) -> object:
    keys = [pubkey(item) for item in params.array(0, "pubkeys", max_items=MAX_MULTIPLE_ACCOUNTS)]
    config = params.config(1)
    encoding = config.choice("encoding", ACCOUNT_ENCODINGS, "base64")
    data_slice = config.data_slice()
    values = []
    for key in keys:
        account = node.ledger.get(key)
        values.append(None if account is None else account_json(account, encoding, data_slice))
    return node.contextual(values)


def get_program_accounts(node: Node, params: Params) -> object:
    owner = pubkey(params.required(0, "program id"))
    config = params.config(1)
    encoding = config.choice("encoding", ACCOUNT_ENCODINGS, "base64")
    data_size, memcmps = config.filters()
    accounts = node.ledger.accounts
    selections = accounts.program_accounts(
        owner, data_size=data_size, memcmps=memcmps, data_slice=config.data_slice()
    )
    returned = sum(len(selection) for selection in selections)
    node.stats.visited("getProgramAccounts", accounts.count_owned(owner), returned)
    value: StreamedJson = program_accounts(selections, encoding)
    if config.flag("withContext"):
        return with_context(node.context(), value)
    return value


def get_program_accounts_v2(node: Node, params: Params) -> object:
    """``{"accounts": [...], "paginationKey": str | null}`` (+ ``context`` if withContext).

    getProgramAccounts' params plus ``limit`` (1..10,000, default 1,000), ``paginationKey``
    (the previous page's, opaque) and ``changedSinceSlot`` (accounts last written at or
    after that slot). A page *visits* up to ``limit`` of the program's accounts in a stable
    order and returns those matching the filters, so a page may be short, even empty,
    and still not be the last: the walk is over only when ``paginationKey`` is null.
    """
    owner = pubkey(params.required(0, "program id"))
    config = params.config(1)
    encoding = config.choice("encoding", ACCOUNT_ENCODINGS, "base64")
    data_size, memcmps = config.filters()
    changed_since = _optional_count(config.get("changedSinceSlot"), "changedSinceSlot")
    page = node.ledger.accounts.walk(
        owner,
        cursor=_cursor(config.get("paginationKey")),
        limit=_bounded(config.get("limit"), "limit", V2_DEFAULT_LIMIT, 1, V2_MAX_LIMIT),
        data_size=data_size,
        memcmps=memcmps,
        changed_since=changed_since,
        data_slice=config.data_slice(),
    )
    returned = sum(len(selection) for selection in page.selections)
    node.stats.visited("getProgramAccountsV2", page.visited, returned)
    if changed_since is not None:
        node.stats.changed_since_pages += 1
        node.stats.last_changed_since_slot = changed_since
    key = None if page.next_cursor is None else page.next_cursor.encode()
    head = '{"accounts":'
    if config.flag("withContext"):
        head = '{"context":' + json.dumps(node.context(), separators=(",", ":")) + "," + head[1:]
    tail = ',"paginationKey":' + json.dumps(key) + "}"
    accounts_json = program_accounts(page.selections, encoding)
    return StreamedJson(_framed(head, accounts_json.chunks(), tail))


def _framed(head: str, body: Iterator[str], tail: str) -> Iterator[str]:
    yield head
    yield from body
    yield tail


def _cursor(value: object) -> Cursor | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid_params("Invalid params: paginationKey must be a string")
    try:
        return Cursor.decode(value)
    except ValueError as error:
        raise invalid_params(f"Invalid params: {error}") from error


def _optional_count(value: object, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise invalid_params(f"Invalid params: {what} must be a non-negative integer")
    return value


def _bounded(value: object, what: str, default: int, low: int, high: int) -> int:
    count = _optional_count(value, what)
    if count is None:
        return default
    if not low <= count <= high:
        raise invalid_params(f"Invalid params: {what} must be between {low} and {high}")
    return count


METHODS: Final[dict[str, Handler]] = {
    "getHealth": get_health,
    "getVersion": get_version,
    "getGenesisHash": get_genesis_hash,
    "getSlot": get_slot,
    "getBlockHeight": get_block_height,
    "getEpochInfo": get_epoch_info,
    "getLatestBlockhash": get_latest_blockhash,
    "isBlockhashValid": is_blockhash_valid,
    "getBlockTime": get_block_time,
    "getAccountInfo": get_account_info,
    "getMultipleAccounts": get_multiple_accounts,
    "getProgramAccounts": get_program_accounts,
    "getProgramAccountsV2": get_program_accounts_v2,
    "getBalance": get_balance,
    "getMinimumBalanceForRentExemption": get_minimum_balance_for_rent_exemption,
    "getFeeForMessage": rpc_transactions.get_fee_for_message,
    "getRecentPrioritizationFees": get_recent_prioritization_fees,
    "sendTransaction": rpc_transactions.send_transaction,
    "simulateTransaction": rpc_transactions.simulate_transaction,
    "getSignatureStatuses": rpc_transactions.get_signature_statuses,
    "getTransaction": rpc_transactions.get_transaction,
    **rpc_control.CONTROL_METHODS,
}
