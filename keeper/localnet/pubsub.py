"""Websocket subscriptions of the local chain, notified as an Agave node notifies them.

A real node notifies once per slot, when the slot completes, with each changed account's
state at the end of that slot (two writes in one slot: one notification, the last state).
So does this one: the ledger tells ``Subscriptions`` which accounts changed and which
transactions landed; when the clock ends a slot (``ChainClock.slot_listeners``), every
matching subscription is notified with ``context.slot`` = that slot. Every landed
transaction is final at once here, so ``processed``, ``confirmed`` and ``finalized``
subscriptions all hear at the end of the slot.

What a real node sends, and so what this one sends:

- ``programSubscribe``: each changed account *owned by the program at the end of the
  slot* that matches the filters. A closed account is stored as the default account
  (0 lamports, owned by the system program), so it has left the program: **no
  programNotification for a close**.
- ``accountSubscribe``: any change of the key; a closed account is notified as the default
  account (lamports 0, owner the system program, data empty, space 0). The Clock sysvar
  changes every slot, so its subscribers hear every slot.
- ``slotSubscribe``: every slot, ``{"parent", "root", "slot"}`` (root = slot: final at once).
- ``signatureSubscribe``: the transaction landing in a slot that ends after the
  subscription (as on Agave, a signature already landed in an earlier slot is never
  notified: subscribe before sending, or ask getSignatureStatuses); then the
  subscription ends by itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol, TypeVar

from keeper.localnet.ledger import CLOCK_SYSVAR
from keeper.localnet.model import Account
from keeper.localnet.rpc_accounts import ACCOUNT_ENCODINGS, MAX_BASE58_BYTES, account_json
from keeper.localnet.rpc_params import (
    INVALID_PARAMS,
    Params,
    RpcMethodError,
    invalid_params,
    pubkey,
    signature,
)
from keeper.localnet.system_program import SYSTEM_PROGRAM

if TYPE_CHECKING:
    from collections.abc import Callable

    from solders.pubkey import Pubkey
    from solders.signature import Signature

    from keeper.localnet.account_store import DataSlice, Memcmp
    from keeper.localnet.ledger import Ledger, TransactionRecord
    from keeper.localnet.stats import NodeStats

_K = TypeVar("_K")
COMMITMENTS: Final = ("processed", "confirmed", "finalized")
BASE58_TOO_LARGE: Final = "error: data too large for bs58 encoding"  # Agave's marker
INVALID_SUBSCRIPTION: Final = "Invalid subscription id."

# subscribe method -> (unsubscribe method, notification method)
KINDS: Final = {
    "accountSubscribe": ("accountUnsubscribe", "accountNotification"),
    "programSubscribe": ("programUnsubscribe", "programNotification"),
    "slotSubscribe": ("slotUnsubscribe", "slotNotification"),
    "signatureSubscribe": ("signatureUnsubscribe", "signatureNotification"),
}
UNSUBSCRIBE: Final = {unsubscribe: subscribe for subscribe, (unsubscribe, _) in KINDS.items()}


class Sink(Protocol):
    """A connection's outgoing side: takes one notification's JSON text."""

    def notify(self, method: str, text: str) -> None: ...


@dataclass(frozen=True, slots=True)
class _Subscription:
    id: int
    method: str  # the subscribe method
    sink: Sink
    key: Pubkey | None = None  # account or program
    signature: Signature | None = None
    encoding: str = "base64"
    data_slice: DataSlice | None = None
    data_size: int | None = None
    memcmps: tuple[Memcmp, ...] = ()

    def matches(self, account: Account) -> bool:
        data = account.data
        if self.data_size is not None and len(data) != self.data_size:
            return False
        return all(data[m.offset : m.offset + len(m.bytes)] == m.bytes for m in self.memcmps)


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def _encoded(account: Account, encoding: str, data_slice: DataSlice | None) -> dict[str, object]:
    """The account as a notification carries it (base58 past 128 bytes: Agave's marker)."""
    if encoding == "base58":
        data = account.data
        if data_slice is not None:
            data = data[data_slice.offset : data_slice.offset + data_slice.length]
        if len(data) > MAX_BASE58_BYTES:
            shown = account_json(Account(account.lamports, b"", account.owner), "base58")
            return {**shown, "data": [BASE58_TOO_LARGE, "base58"], "space": len(account.data)}
    return account_json(account, encoding, data_slice)


def _closed_json(encoding: str) -> dict[str, object]:
    """The default account a closed one becomes: what accountNotification shows."""
    shown = account_json(Account(0, b"", SYSTEM_PROGRAM), encoding)
    return {**shown, "rentEpoch": 0}


class Subscriptions:
    """Every subscription of every connection, and the changes of the slot in progress."""

    def __init__(self, ledger: Ledger, stats: NodeStats) -> None:
        self.ledger = ledger
        self.stats = stats
        self._next_id = 0
        self._by_id: dict[int, _Subscription] = {}
        self._accounts: dict[Pubkey, dict[int, _Subscription]] = {}
        self._programs: dict[Pubkey, dict[int, _Subscription]] = {}
        self._slots: dict[int, _Subscription] = {}
        self._signatures: dict[Signature, dict[int, _Subscription]] = {}
        self._changed: dict[Pubkey, None] = {}  # this slot's changed keys, in order
        self._landed: list[TransactionRecord] = []
        ledger.listeners.append(self)
        ledger.clock.slot_listeners.append(self.slot_ended)

    def __len__(self) -> int:
        return len(self._by_id)

    # -- the ledger's side ----------------------------------------------------------------

    def account_changed(self, key: Pubkey) -> None:
        self._changed[key] = None

    def transaction_landed(self, record: TransactionRecord) -> None:
        self._landed.append(record)

    def slot_ended(self, slot: int) -> None:
        """Notify what changed in ``slot`` (its final state), then the slot itself."""
        changed, self._changed = self._changed, {}
        landed, self._landed = self._landed, []
        if not self._by_id:
            return
        context: dict[str, object] = {"slot": slot}
        for key in changed:
            self._notify_account(key, context)
        if CLOCK_SYSVAR in self._accounts and CLOCK_SYSVAR not in changed:
            self._notify_account(CLOCK_SYSVAR, context)  # the Clock changes every slot
        for record in landed:
            self._notify_signature(record, context)
        for sub in list(self._slots.values()):
            self._send(sub, {"parent": slot - 1, "root": slot, "slot": slot})

    def _notify_account(self, key: Pubkey, context: dict[str, object]) -> None:
        watchers = self._accounts.get(key)
        owner_watchers = None
        account = self.ledger.get(key)
        if account is not None:
            owner_watchers = self._programs.get(account.owner)
        if watchers:
            for sub in list(watchers.values()):
                shown = (
                    _closed_json(sub.encoding)
                    if account is None
                    else _encoded(account, sub.encoding, sub.data_slice)
                )
                self._send(sub, {"context": context, "value": shown})
        if account is not None and owner_watchers:
            for sub in list(owner_watchers.values()):
                if sub.matches(account):
                    shown = _encoded(account, sub.encoding, sub.data_slice)
                    value = {"pubkey": str(key), "account": shown}
                    self._send(sub, {"context": context, "value": value})

    def _notify_signature(self, record: TransactionRecord, context: dict[str, object]) -> None:
        watchers = self._signatures.pop(record.signature, None)
        for sub in (watchers or {}).values():
            self._forget(sub)
            self._send(sub, {"context": context, "value": {"err": record.err}})

    def _send(self, sub: _Subscription, result: object) -> None:
        notification = KINDS[sub.method][1]
        text = _dumps(
            {
                "jsonrpc": "2.0",
                "method": notification,
                "params": {"result": result, "subscription": sub.id},
            }
        )
        sub.sink.notify(notification, text)

    # -- the connections' side ------------------------------------------------------------

    def subscribe(self, sink: Sink, method: str, params: Params) -> int:
        """A new subscription of ``sink``; its id. Raises RpcMethodError for bad params."""
        build = _BUILDERS[method]
        sub = build(self._next_id, sink, params)
        self._next_id += 1
        self._by_id[sub.id] = sub
        if method == "accountSubscribe":
            self._accounts.setdefault(sub.key, {})[sub.id] = sub  # type: ignore[arg-type]
        elif method == "programSubscribe":
            self._programs.setdefault(sub.key, {})[sub.id] = sub  # type: ignore[arg-type]
        elif method == "slotSubscribe":
            self._slots[sub.id] = sub
        else:
            self._signatures.setdefault(sub.signature, {})[sub.id] = sub  # type: ignore[arg-type]
        return sub.id

    def unsubscribe(self, sink: Sink, method: str, params: Params) -> bool:
        """End one of ``sink``'s subscriptions of the kind ``method`` ends."""
        sub_id = params.integer(0, "subscription id")
        sub = self._by_id.get(sub_id)
        if sub is None or sub.sink is not sink or UNSUBSCRIBE[method] != sub.method:
            raise RpcMethodError(INVALID_PARAMS, INVALID_SUBSCRIPTION)
        self._forget(sub)
        return True

    def drop(self, sink: Sink) -> None:
        """Forget every subscription of a closed connection."""
        for sub in [sub for sub in self._by_id.values() if sub.sink is sink]:
            self._forget(sub)

    def _forget(self, sub: _Subscription) -> None:
        self._by_id.pop(sub.id, None)
        self._slots.pop(sub.id, None)
        if sub.signature is not None:
            _discard(self._signatures, sub.signature, sub.id)
        elif sub.key is not None:
            index = self._accounts if sub.method == "accountSubscribe" else self._programs
            _discard(index, sub.key, sub.id)


def _discard(index: dict[_K, dict[int, _Subscription]], group_key: _K, sub_id: int) -> None:
    group = index.get(group_key)
    if group is not None:
        group.pop(sub_id, None)
        if not group:
            del index[group_key]


# -- parsing subscribe params -------------------------------------------------------------


def _commitment(config_value: object) -> None:
    if config_value is not None and config_value not in COMMITMENTS:
        raise invalid_params(f"Invalid params: unsupported commitment {config_value!r}")


def _account_sub(sub_id: int, sink: Sink, params: Params) -> _Subscription:
    key = pubkey(params.required(0, "pubkey"))
    config = params.config(1)
    _commitment(config.get("commitment"))
    return _Subscription(
        sub_id,
        "accountSubscribe",
        sink,
        key=key,
        encoding=config.choice("encoding", ACCOUNT_ENCODINGS, "base58"),
        data_slice=config.data_slice(),
    )


def _program_sub(sub_id: int, sink: Sink, params: Params) -> _Subscription:
    key = pubkey(params.required(0, "program id"))
    config = params.config(1)
    _commitment(config.get("commitment"))
    data_size, memcmps = config.filters()
    return _Subscription(
        sub_id,
        "programSubscribe",
        sink,
        key=key,
        encoding=config.choice("encoding", ACCOUNT_ENCODINGS, "base58"),
        data_slice=config.data_slice(),
        data_size=data_size,
        memcmps=memcmps,
    )


def _slot_sub(sub_id: int, sink: Sink, _params: Params) -> _Subscription:
    return _Subscription(sub_id, "slotSubscribe", sink)


def _signature_sub(sub_id: int, sink: Sink, params: Params) -> _Subscription:
    value = signature(params.required(0, "signature"))
    _commitment(params.config(1).get("commitment"))
    return _Subscription(sub_id, "signatureSubscribe", sink, signature=value)


_BUILDERS: Final[dict[str, Callable[[int, Sink, Params], _Subscription]]] = {
    "accountSubscribe": _account_sub,
    "programSubscribe": _program_sub,
    "slotSubscribe": _slot_sub,
    "signatureSubscribe": _signature_sub,
}
