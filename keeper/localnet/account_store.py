"""Account storage laid out for fast getProgramAccounts.

Accounts are grouped by (owner, data length); each group is an ``AccountTable`` whose data
is one numpy matrix (a row per account). A ``dataSize`` filter picks tables and a
``memcmp`` filter is a vector comparison over a column range, so scanning a million
240-byte jobs for one market costs milliseconds, not seconds of Python.

Each row also keeps the slot its account last changed in (getProgramAccountsV2's
``changedSinceSlot``), and ``walk`` pages through an owner's accounts in a stable order
(data length, then row) behind an opaque cursor, as a paginated index would.
"""

from __future__ import annotations

import struct
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import based58
import numpy as np
import numpy.typing as npt

from keeper.localnet.model import Account

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping, Sequence

    from solders.pubkey import Pubkey

Rows = npt.NDArray[np.intp]
_INITIAL_CAPACITY: Final = 16
_WORD_DTYPES: Final[dict[int, str]] = {8: "<u8", 4: "<u4", 2: "<u2", 1: "u1"}
# Gather candidate rows when they are under 1/8 of the table; else scan the column.
_GATHER_FRACTION: Final = 8
_CURSOR: Final = struct.Struct("<IQ")  # data length, row
_LIVE_WINDOW: Final = 4_096


@dataclass(frozen=True, slots=True)
class Memcmp:
    offset: int
    bytes: bytes


@dataclass(frozen=True, slots=True)
class DataSlice:
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class Selection:
    """Accounts of one table matched by a query, copied out of the table.

    The copy keeps a streamed answer consistent while transactions land meanwhile.
    """

    owner: Pubkey
    space: int
    keys: list[str]  # base58
    lamports: npt.NDArray[np.uint64]
    executable: npt.NDArray[np.bool_]
    data: npt.NDArray[np.uint8]  # one row per account, already sliced

    def __len__(self) -> int:
        return len(self.keys)


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a paged walk resumes: the first row not yet visited of one table."""

    data_len: int
    row: int

    def encode(self) -> str:
        """An opaque string (base58), as providers' pagination keys are."""
        return based58.b58encode(_CURSOR.pack(self.data_len, self.row)).decode()

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            data_len, row = _CURSOR.unpack(based58.b58decode(text.encode()))
        except (ValueError, struct.error) as error:
            raise ValueError(f"invalid pagination key {text!r}") from error
        return cls(data_len, row)


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a walk: what matched, how many accounts were visited, where to resume."""

    selections: list[Selection]
    visited: int
    next_cursor: Cursor | None  # None: the walk reached the end


def _words(memcmp: Memcmp) -> Iterator[tuple[int, bytes]]:
    """The pattern cut into 8-, 4-, 2- and 1-byte words: each compares as one integer."""
    position = 0
    pattern = memcmp.bytes
    while position < len(pattern):
        width = next(size for size in _WORD_DTYPES if size <= len(pattern) - position)
        yield memcmp.offset + position, pattern[position : position + width]
        position += width


class AccountTable:
    """Every account with one owner and one data length, one row each."""

    def __init__(self, owner: Pubkey, data_len: int) -> None:
        self.owner = owner
        self.data_len = data_len
        self.size = 0  # rows ever used; rows below it may be free
        self.data = np.zeros((_INITIAL_CAPACITY, data_len), dtype=np.uint8)
        self.lamports = np.zeros(_INITIAL_CAPACITY, dtype=np.uint64)
        self.executable = np.zeros(_INITIAL_CAPACITY, dtype=np.bool_)
        self.live = np.zeros(_INITIAL_CAPACITY, dtype=np.bool_)
        self.changed = np.zeros(_INITIAL_CAPACITY, dtype=np.uint64)  # slot of the last write
        self.keys: list[Pubkey | None] = []
        self._key_strings: list[str | None] = []
        self._free: list[int] = []

    def __len__(self) -> int:
        return self.size - len(self._free)

    def _reserve(self, rows: int) -> None:
        capacity = len(self.lamports)
        if rows <= capacity:
            return
        new_capacity = max(rows, 2 * capacity)
        data = np.zeros((new_capacity, self.data_len), dtype=np.uint8)
        data[: self.size] = self.data[: self.size]
        self.data = data
        self.lamports = np.resize(self.lamports, new_capacity)
        self.executable = np.resize(self.executable, new_capacity)
        self.changed = np.resize(self.changed, new_capacity)
        live = np.zeros(new_capacity, dtype=np.bool_)
        live[: self.size] = self.live[: self.size]
        self.live = live

    def add(self, key: Pubkey, account: Account, slot: int = 0) -> int:
        if self._free:
            row = self._free.pop()
            self.keys[row] = key
            self._key_strings[row] = None
        else:
            self._reserve(self.size + 1)
            row = self.size
            self.size += 1
            self.keys.append(key)
            self._key_strings.append(None)
        self.live[row] = True
        self.write(row, account, slot)
        return row

    def extend(self, keys: Sequence[Pubkey], accounts: Sequence[Account], slot: int = 0) -> range:
        """Append many accounts at once (world loading); returns their rows."""
        start = self.size
        count = len(keys)
        self._reserve(start + count)
        end = start + count
        if self.data_len:
            joined = b"".join(account.data for account in accounts)
            self.data[start:end] = np.frombuffer(joined, dtype=np.uint8).reshape(
                count, self.data_len
            )
        self.lamports[start:end] = [account.lamports for account in accounts]
        self.executable[start:end] = [account.executable for account in accounts]
        self.changed[start:end] = slot
        self.live[start:end] = True
        self.keys.extend(keys)
        self._key_strings.extend([None] * count)
        self.size = end
        return range(start, end)

    def write(self, row: int, account: Account, slot: int = 0) -> None:
        self.data[row] = np.frombuffer(account.data, dtype=np.uint8)
        self.lamports[row] = account.lamports
        self.executable[row] = account.executable
        self.changed[row] = slot

    def remove(self, row: int) -> None:
        self.live[row] = False
        self.keys[row] = None
        self._key_strings[row] = None
        self._free.append(row)

    def account(self, row: int) -> Account:
        return Account(
            lamports=int(self.lamports[row]),
            data=self.data[row].tobytes(),
            owner=self.owner,
            executable=bool(self.executable[row]),
        )

    def key_string(self, row: int) -> str:
        text = self._key_strings[row]
        if text is None:
            text = str(self.keys[row])
            self._key_strings[row] = text
        return text

    def select(self, memcmps: Sequence[Memcmp]) -> Rows:
        """Rows of live accounts whose data matches every memcmp."""
        if any(m.offset < 0 or m.offset + len(m.bytes) > self.data_len for m in memcmps):
            return np.empty(0, dtype=np.intp)
        rows: Rows | None = None  # None: every live row is still a candidate
        # Longest pattern first: a pubkey's first 8 bytes narrow a million rows to a few
        # thousand in one strided pass; later words then touch only those candidates.
        for memcmp in sorted(memcmps, key=lambda m: -len(m.bytes)):
            for offset, word in _words(memcmp):
                rows = self._narrow(rows, offset, word)
                if not len(rows):
                    return rows
        return np.flatnonzero(self.live[: self.size]) if rows is None else rows

    def matching(
        self, rows: Rows, memcmps: Sequence[Memcmp], changed_since: int | None = None
    ) -> Rows:
        """Those of ``rows`` whose data matches every memcmp (and changed at or after
        ``changed_since``, when given)."""
        if any(m.offset < 0 or m.offset + len(m.bytes) > self.data_len for m in memcmps):
            return np.empty(0, dtype=np.intp)
        if changed_since is not None:
            rows = rows[self.changed[rows] >= changed_since]
        for memcmp in sorted(memcmps, key=lambda m: -len(m.bytes)):
            for offset, word in _words(memcmp):
                if not len(rows):
                    return rows
                rows = self._narrow(rows, offset, word)
        return rows

    def live_rows_from(self, start: int, limit: int) -> Rows:
        """Up to ``limit`` live rows at or after ``start``, in row order."""
        pieces: list[Rows] = []
        count, position, window = 0, start, max(limit, _LIVE_WINDOW)
        while position < self.size and count < limit:
            piece = np.flatnonzero(self.live[position : min(position + window, self.size)])
            pieces.append(piece[: limit - count] + position)
            count += len(pieces[-1])
            position += window
            window *= 2
        return np.concatenate(pieces) if pieces else np.empty(0, dtype=np.intp)

    def _narrow(self, rows: Rows | None, offset: int, word: bytes) -> Rows:
        """Candidates whose bytes at ``offset`` equal ``word`` (1, 2, 4 or 8 bytes)."""
        dtype = _WORD_DTYPES[len(word)]
        value = int.from_bytes(word, "little")
        end = offset + len(word)
        if rows is not None and len(rows) * _GATHER_FRACTION <= self.size:
            gathered = self.data[rows, offset:end]  # few candidates: gather them
            kept: Rows = rows[gathered.view(dtype)[:, 0] == value]
            return kept
        # Many candidates: one strided pass over the column beats gathering rows.
        matches = self.data[: self.size, offset:end].view(dtype)[:, 0] == value
        if rows is None:
            return np.flatnonzero(matches & self.live[: self.size])
        narrowed: Rows = rows[matches[rows]]
        return narrowed

    def selection(self, rows: Rows, data_slice: DataSlice | None) -> Selection:
        if data_slice is None:
            data = self.data[rows]
        else:
            low = min(data_slice.offset, self.data_len)
            high = min(data_slice.offset + data_slice.length, self.data_len)
            data = self.data[rows, low:high]
        return Selection(
            owner=self.owner,
            space=self.data_len,
            keys=[self.key_string(row) for row in rows.tolist()],
            lamports=self.lamports[rows],
            executable=self.executable[rows],
            data=data,
        )


class AccountStore:
    """All accounts, by key and by (owner, data length)."""

    def __init__(self) -> None:
        self._where: dict[Pubkey, tuple[AccountTable, int]] = {}
        self._tables: dict[Pubkey, dict[int, AccountTable]] = defaultdict(dict)

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, key: Pubkey) -> bool:
        return key in self._where

    def keys(self) -> Iterable[Pubkey]:
        return self._where.keys()

    def get(self, key: Pubkey) -> Account | None:
        """A fresh copy of the account (mutating it changes nothing stored)."""
        found = self._where.get(key)
        return None if found is None else found[0].account(found[1])

    def put(self, key: Pubkey, account: Account, slot: int = 0) -> None:
        """Store ``account`` at ``key`` as changed in ``slot``; zero lamports deletes it."""
        if account.lamports == 0:
            self.delete(key)
            return
        found = self._where.get(key)
        if found is not None:
            table, row = found
            if table.owner == account.owner and table.data_len == len(account.data):
                table.write(row, account, slot)
                return
            table.remove(row)
        table = self._table(account.owner, len(account.data))
        self._where[key] = (table, table.add(key, account, slot))

    def delete(self, key: Pubkey) -> bool:
        found = self._where.pop(key, None)
        if found is None:
            return False
        found[0].remove(found[1])
        return True

    def load(self, accounts: Mapping[Pubkey, Account], slot: int = 0) -> None:
        """Bulk insert (a world's genesis): one numpy copy per (owner, length) group."""
        groups: dict[tuple[Pubkey, int], tuple[list[Pubkey], list[Account]]] = defaultdict(
            lambda: ([], [])
        )
        for key, account in accounts.items():
            if key in self._where or account.lamports == 0:
                self.put(key, account, slot)
                continue
            keys, values = groups[(account.owner, len(account.data))]
            keys.append(key)
            values.append(account)
        for (owner, data_len), (keys, values) in groups.items():
            table = self._table(owner, data_len)
            rows = table.extend(keys, values, slot)
            self._where.update(zip(keys, ((table, row) for row in rows), strict=True))

    def _table(self, owner: Pubkey, data_len: int) -> AccountTable:
        by_length = self._tables[owner]
        table = by_length.get(data_len)
        if table is None:
            table = by_length[data_len] = AccountTable(owner, data_len)
        return table

    def program_accounts(
        self,
        owner: Pubkey,
        *,
        data_size: int | None = None,
        memcmps: Sequence[Memcmp] = (),
        data_slice: DataSlice | None = None,
    ) -> list[Selection]:
        by_length = self._tables.get(owner, {})
        if data_size is not None:
            tables = [by_length[data_size]] if data_size in by_length else []
        else:
            tables = list(by_length.values())
        selections = []
        for table in tables:
            rows = table.select(memcmps)
            if len(rows):
                selections.append(table.selection(rows, data_slice))
        return selections

    def count_owned(self, owner: Pubkey) -> int:
        """How many accounts ``owner`` has: what a node walks for one getProgramAccounts."""
        return sum(len(table) for table in self._tables.get(owner, {}).values())

    def walk(
        self,
        owner: Pubkey,
        *,
        cursor: Cursor | None,
        limit: int,
        data_size: int | None = None,
        memcmps: Sequence[Memcmp] = (),
        changed_since: int | None = None,
        data_slice: DataSlice | None = None,
    ) -> Page:
        """Visit up to ``limit`` of ``owner``'s accounts from ``cursor`` on; keep the matches.

        Filters apply to the visited accounts, so a page may hold fewer than ``limit``
        matches (even none) and still not be the last: only ``next_cursor is None`` ends.
        """
        tables = sorted(self._tables.get(owner, {}).values(), key=lambda t: t.data_len)
        start = cursor or Cursor(tables[0].data_len if tables else 0, 0)
        selections: list[Selection] = []
        visited = 0
        for table in tables:
            if table.data_len < start.data_len:
                continue
            first = start.row if table.data_len == start.data_len else 0
            rows = table.live_rows_from(first, limit - visited)
            visited += len(rows)
            if data_size is None or data_size == table.data_len:
                matched = table.matching(rows, memcmps, changed_since)
                if len(matched):
                    selections.append(table.selection(matched, data_slice))
            if visited >= limit and len(rows):
                resume = Cursor(table.data_len, int(rows[-1]) + 1)
                return Page(selections, visited, self._unless_done(tables, resume))
        return Page(selections, visited, None)

    @staticmethod
    def _unless_done(tables: list[AccountTable], resume: Cursor) -> Cursor | None:
        """``resume``, or None when no live account is left at or after it."""
        for table in tables:
            if table.data_len < resume.data_len:
                continue
            first = resume.row if table.data_len == resume.data_len else 0
            if len(table.live_rows_from(first, 1)):
                return Cursor(table.data_len, first)
        return None
