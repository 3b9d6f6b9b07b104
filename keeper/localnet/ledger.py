"""The local chain's state: accounts, the clock, sysvars, rent and transaction history.

Every account write (put, delete) and every landed transaction is told to the ledger's
``listeners`` (the websocket subscriptions), so notifications follow the ledger whatever
changed it: a transaction, a fault's competitor, or a control method.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol

from solders.pubkey import Pubkey

from keeper.localnet.account_store import AccountStore
from keeper.localnet.model import Account

if TYPE_CHECKING:
    from collections.abc import Mapping

    from solders.signature import Signature
    from solders.transaction import VersionedTransaction

    from keeper.localnet.clock import ChainClock
    from keeper.localnet.tx_errors import TransactionErrorJson

CLOCK_SYSVAR: Final = Pubkey.from_string("SysvarC1ock11111111111111111111111111111111")
SYSVAR_OWNER: Final = Pubkey.from_string("Sysvar1111111111111111111111111111111111111")
NATIVE_LOADER: Final = Pubkey.from_string("NativeLoader1111111111111111111111111111111")
UPGRADEABLE_LOADER: Final = Pubkey.from_string("BPFLoaderUpgradeab1e11111111111111111111111")

# Rent at the default rates: 3,480 lamports per byte-year, two years for exemption, plus
# 128 bytes of account metadata.
_ACCOUNT_STORAGE_OVERHEAD: Final = 128
_LAMPORTS_PER_BYTE_YEAR: Final = 3_480
_EXEMPTION_YEARS: Final = 2
# Without searchTransactionHistory a node answers from its status cache (~300 slots).
STATUS_CACHE_SLOTS: Final = 300


def rent_exempt_minimum(data_len: int) -> int:
    return (_ACCOUNT_STORAGE_OVERHEAD + data_len) * _LAMPORTS_PER_BYTE_YEAR * _EXEMPTION_YEARS


class LedgerListener(Protocol):
    """Told of each change as it happens (within the current slot)."""

    def account_changed(self, key: Pubkey) -> None: ...
    def transaction_landed(self, record: TransactionRecord) -> None: ...


@dataclass(frozen=True, slots=True)
class TransactionRecord:
    """A landed transaction (successful or failed) with its status meta."""

    signature: Signature
    transaction: VersionedTransaction
    slot: int
    block_time: int
    err: TransactionErrorJson | None
    fee: int
    logs: tuple[str, ...]
    units_consumed: int
    pre_balances: tuple[int, ...]
    post_balances: tuple[int, ...]


class Ledger:
    """Accounts by key and by owner, plus the chain clock and what landed."""

    def __init__(self, clock: ChainClock) -> None:
        self.clock = clock
        self.accounts = AccountStore()
        self.listeners: list[LedgerListener] = []
        self._transactions: dict[Signature, TransactionRecord] = {}

    # -- accounts -------------------------------------------------------------------------

    def get(self, key: Pubkey) -> Account | None:
        """A working copy of the account at ``key`` (the Clock sysvar is built on demand)."""
        if key == CLOCK_SYSVAR:
            data = self.clock.clock_sysvar_data()
            return Account(rent_exempt_minimum(len(data)), data, SYSVAR_OWNER)
        return self.accounts.get(key)

    def put(self, key: Pubkey, account: Account) -> None:
        if key == CLOCK_SYSVAR:
            raise ValueError("the Clock sysvar is derived from the chain clock; set the clock")
        self.accounts.put(key, account, self.clock.slot)
        self._changed(key)

    def delete(self, key: Pubkey) -> bool:
        deleted = self.accounts.delete(key)
        if deleted:
            self._changed(key)
        return deleted

    def _changed(self, key: Pubkey) -> None:
        for listener in self.listeners:
            listener.account_changed(key)

    def load(self, accounts: Mapping[Pubkey, Account]) -> None:
        """Genesis accounts: changed at the current slot, told to no listener."""
        self.accounts.load(accounts, self.clock.slot)

    def add_program(self, program_id: Pubkey, *, builtin: bool = False) -> None:
        """An executable placeholder at ``program_id`` so getAccountInfo shows a program."""
        if program_id in self.accounts:
            return
        loader = NATIVE_LOADER if builtin else UPGRADEABLE_LOADER
        data = b"" if builtin else bytes(4 + 32)  # UpgradeableLoaderState::Program
        self.accounts.put(
            program_id, Account(rent_exempt_minimum(len(data)), data, loader, executable=True)
        )

    def balance(self, key: Pubkey) -> int:
        account = self.get(key)
        return 0 if account is None else account.lamports

    # -- history --------------------------------------------------------------------------

    def record(self, record: TransactionRecord) -> None:
        self._transactions[record.signature] = record
        for listener in self.listeners:
            listener.transaction_landed(record)

    def transactions(self) -> list[TransactionRecord]:
        """Every landed transaction (successful or failed), in landing order."""
        return list(self._transactions.values())

    @property
    def transaction_count(self) -> int:
        return len(self._transactions)

    def has_processed(self, signature: Signature) -> bool:
        return signature in self._transactions

    def transaction(self, signature: Signature) -> TransactionRecord | None:
        return self._transactions.get(signature)

    def records(self) -> list[TransactionRecord]:
        """Every landed transaction, in the order it landed."""
        return list(self._transactions.values())

    def signature_status(
        self, signature: Signature, *, search_history: bool
    ) -> TransactionRecord | None:
        record = self._transactions.get(signature)
        if record is None:
            return None
        if not search_history and self.clock.slot - record.slot > STATUS_CACHE_SLOTS:
            return None
        return record
