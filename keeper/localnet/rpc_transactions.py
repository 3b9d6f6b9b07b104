"""Solana JSON-RPC methods about transactions: send, simulate, fees, statuses, history."""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Final

import based58
from solders.message import MessageV0

from keeper.localnet.node import PreflightError, SignatureVerificationError
from keeper.localnet.rpc_accounts import ACCOUNT_ENCODINGS, account_json
from keeper.localnet.rpc_params import (
    INVALID_PARAMS,
    SEND_TRANSACTION_PREFLIGHT_FAILURE,
    TRANSACTION_SIGNATURE_VERIFICATION_FAILURE,
    UNSUPPORTED_TRANSACTION_VERSION,
    Config,
    Params,
    RpcMethodError,
    invalid_params,
    pubkey,
    signature,
)
from keeper.localnet.transaction_view import PACKET_DATA_SIZE
from keeper.localnet.tx_errors import describe

if TYPE_CHECKING:
    from solders.transaction import VersionedTransaction

    from keeper.localnet.ledger import TransactionRecord
    from keeper.localnet.node import Node, Simulation

# The longest text that can encode PACKET_DATA_SIZE bytes, as nodes compute it.
_MAX_ENCODED: Final = {"base58": 1_683, "base64": 1_644}
_TYPE_NAME: Final = "solana_transaction::versioned::VersionedTransaction"
MAX_SIGNATURE_STATUSES: Final = 256
# A landed transaction is reported "finalized" once this many slots have passed.
_FINALIZATION_SLOTS: Final = 32


def _wire_bytes(params: Params, config: Config) -> bytes:
    text = params.string(0, "transaction")
    encoding = config.choice("encoding", ("base58", "base64"), "base58")
    limit = _MAX_ENCODED[encoding]
    if len(text) > limit:
        raise invalid_params(
            f"{encoding} encoded {_TYPE_NAME} too large: {len(text)} bytes "
            f"(max: encoded/raw {limit}/{PACKET_DATA_SIZE})"
        )
    try:
        if encoding == "base64":
            raw = base64.b64decode(text, validate=True)
        else:
            raw = based58.b58decode(text.encode())
    except (ValueError, binascii.Error) as error:
        raise invalid_params(f"invalid {encoding} encoding: {error}") from error
    if len(raw) > PACKET_DATA_SIZE:
        raise invalid_params(
            f"decoded {_TYPE_NAME} too large: {len(raw)} bytes (max: {PACKET_DATA_SIZE} bytes)"
        )
    return raw


def _decode_errors(error: Exception) -> RpcMethodError:
    if isinstance(error, SignatureVerificationError):
        return RpcMethodError(TRANSACTION_SIGNATURE_VERIFICATION_FAILURE, str(error))
    return RpcMethodError(INVALID_PARAMS, str(error))


def simulation_json(simulation: Simulation, accounts: list[object] | None = None) -> object:
    replacement = simulation.replacement_blockhash
    return {
        "accounts": accounts,
        "err": simulation.err,
        "innerInstructions": None,
        "logs": list(simulation.logs),
        "replacementBlockhash": None
        if replacement is None
        else {
            "blockhash": str(replacement.blockhash),
            "lastValidBlockHeight": replacement.last_valid_block_height,
        },
        "returnData": None,
        "unitsConsumed": simulation.units_consumed,
    }


def send_transaction(node: Node, params: Params) -> object:
    config = params.config(1)
    raw = _wire_bytes(params, config)
    try:
        sent = node.send_transaction(raw, skip_preflight=config.flag("skipPreflight"))
    except PreflightError as failed:
        simulation = failed.simulation
        assert simulation.err is not None  # a preflight fails with an error
        raise RpcMethodError(
            SEND_TRANSACTION_PREFLIGHT_FAILURE,
            f"Transaction simulation failed: {describe(simulation.err)}",
            simulation_json(simulation),
        ) from failed
    except ValueError as error:
        raise _decode_errors(error) from error
    return str(sent)


def simulate_transaction(node: Node, params: Params) -> object:
    config = params.config(1)
    raw = _wire_bytes(params, config)
    sig_verify = config.flag("sigVerify")
    replace = config.flag("replaceRecentBlockhash")
    if sig_verify and replace:
        raise invalid_params("sigVerify may not be used with replaceRecentBlockhash")
    requested = config.get("accounts")
    addresses: list[object] = []
    encoding = "base64"
    if isinstance(requested, dict):
        addresses = Params([requested.get("addresses")]).array(0, "addresses", max_items=256)
        encoding = Config(requested).choice("encoding", ACCOUNT_ENCODINGS, "base64")
    keys = tuple(pubkey(item) for item in addresses)
    try:
        simulation = node.simulate(
            raw, sig_verify=sig_verify, replace_recent_blockhash=replace, addresses=keys
        )
    except ValueError as error:
        raise _decode_errors(error) from error
    accounts: list[object] | None = None
    if isinstance(requested, dict):
        accounts = []
        for key in keys:
            account = simulation.accounts_after.get(key)
            accounts.append(None if account is None else account_json(account, encoding))
    return node.contextual(simulation_json(simulation, accounts))


def get_fee_for_message(node: Node, params: Params) -> object:
    text = params.string(0, "message")
    try:
        fee = node.fee_for_message(base64.b64decode(text, validate=True))
    except (ValueError, binascii.Error) as error:
        raise invalid_params(f"Invalid params: invalid message: {error}") from error
    return node.contextual(fee)


def get_signature_statuses(node: Node, params: Params) -> object:
    signatures = [
        signature(item) for item in params.array(0, "signatures", max_items=MAX_SIGNATURE_STATUSES)
    ]
    search = params.config(1).flag("searchTransactionHistory")
    current = node.ledger.clock.slot
    statuses: list[object] = []
    for sig in signatures:
        record = node.ledger.signature_status(sig, search_history=search)
        statuses.append(None if record is None else _status_json(record, current))
    return node.contextual(statuses)


def _status_json(record: TransactionRecord, current_slot: int) -> dict[str, object]:
    age = current_slot - record.slot
    finalized = age >= _FINALIZATION_SLOTS
    return {
        "slot": record.slot,
        "confirmations": None if finalized else age,
        "err": record.err,
        "status": {"Ok": None} if record.err is None else {"Err": record.err},
        "confirmationStatus": "finalized" if finalized else "confirmed",
    }


def get_transaction(node: Node, params: Params) -> object:
    sig = signature(params.required(0, "signature"))
    config = params.config(1)
    encoding = config.choice("encoding", ("json", "jsonParsed", "base64", "base58"), "json")
    max_version = config.get("maxSupportedTransactionVersion")
    record = node.ledger.transaction(sig)
    if record is None:
        return None
    is_v0 = isinstance(record.transaction.message, MessageV0)
    if is_v0 and max_version is None:
        raise RpcMethodError(
            UNSUPPORTED_TRANSACTION_VERSION,
            "Transaction version (0) is not supported by the requesting client. Please try "
            "the request again with the following configuration parameter: "
            '"maxSupportedTransactionVersion": 0',
        )
    transaction: object
    if encoding == "base64":
        transaction = [base64.b64encode(bytes(record.transaction)).decode(), "base64"]
    elif encoding == "base58":
        transaction = [based58.b58encode(bytes(record.transaction)).decode(), "base58"]
    else:
        transaction = _ui_transaction(record.transaction)
    result: dict[str, object] = {
        "slot": record.slot,
        "blockTime": record.block_time,
        "transaction": transaction,
        "meta": _meta_json(record),
    }
    if max_version is not None:
        result["version"] = 0 if is_v0 else "legacy"
    return result


def _meta_json(record: TransactionRecord) -> dict[str, object]:
    return {
        "err": record.err,
        "status": {"Ok": None} if record.err is None else {"Err": record.err},
        "fee": record.fee,
        "preBalances": list(record.pre_balances),
        "postBalances": list(record.post_balances),
        "innerInstructions": [],
        "logMessages": list(record.logs),
        "preTokenBalances": [],
        "postTokenBalances": [],
        "rewards": [],
        "loadedAddresses": {"writable": [], "readonly": []},
        "computeUnitsConsumed": record.units_consumed,
    }


def _ui_transaction(transaction: VersionedTransaction) -> dict[str, object]:
    message = transaction.message
    header = message.header
    ui: dict[str, object] = {
        "accountKeys": [str(key) for key in message.account_keys],
        "header": {
            "numRequiredSignatures": header.num_required_signatures,
            "numReadonlySignedAccounts": header.num_readonly_signed_accounts,
            "numReadonlyUnsignedAccounts": header.num_readonly_unsigned_accounts,
        },
        "recentBlockhash": str(message.recent_blockhash),
        "instructions": [
            {
                "programIdIndex": ix.program_id_index,
                "accounts": list(ix.accounts),
                "data": based58.b58encode(bytes(ix.data)).decode(),
                "stackHeight": None,
            }
            for ix in message.instructions
        ],
    }
    if isinstance(message, MessageV0):
        ui["addressTableLookups"] = []  # transactions with lookups never land here
    return {"signatures": [str(sig) for sig in transaction.signatures], "message": ui}
