"""What a decision sees at an address: the decoded account, nothing, or something else.

The chain layer fetches bytes; these views tell a decision apart the three cases it must
treat differently: an account that no longer exists (``ABSENT``), one that exists but is
not the expected kind or layout (``Foreign``: wrong owner, discriminator or size), and a
decoded account. A legacy 232-byte job decodes to a ``JobAccount`` whose ``timeout`` is
None (``is_legacy``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Final, TypeAlias, TypeVar

from keeper.errors import DecodeError
from keeper.program.layouts import (
    JobAccount,
    MarketAccount,
    RunAccount,
    StakeAccount,
    decode_job,
    decode_market,
    decode_market_terms,
    decode_run,
    decode_stake,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping


class Absent(Enum):
    """No account at the address (closed, or never created)."""

    ABSENT = "absent"


ABSENT: Final = Absent.ABSENT


@dataclass(frozen=True, slots=True)
class Foreign:
    """An account that is not what the address should hold; ``why`` says how it differs."""

    why: str = ""


JobView: TypeAlias = JobAccount | Absent | Foreign
RunView: TypeAlias = RunAccount | Absent | Foreign
MarketView: TypeAlias = MarketAccount | Absent | Foreign
StakeView: TypeAlias = StakeAccount | Absent | Foreign

_NOT_OWNED: Final = Foreign("owned by another program")
_Decoded = TypeVar("_Decoded")


def _view(
    data: bytes | None, owned: bool, decode: Callable[[bytes], _Decoded]
) -> _Decoded | Absent | Foreign:
    if data is None:
        return ABSENT
    if not owned:
        return _NOT_OWNED
    try:
        return decode(data)
    except DecodeError as error:
        return Foreign(str(error))


def job_view(data: bytes | None, *, owned: bool = True) -> JobView:
    """``data`` is None when the account does not exist; ``owned``: owned by the jobs program."""
    return _view(data, owned, decode_job)


def run_view(data: bytes | None, *, owned: bool = True) -> RunView:
    return _view(data, owned, decode_run)


def market_view(data: bytes | None, *, owned: bool = True) -> MarketView:
    return _view(data, owned, decode_market)


def market_terms_view(data: bytes | None, *, owned: bool = True) -> MarketView:
    """A market read with ``MARKET_TERMS_SIZE`` bytes of data (its queue unread): for the
    decisions that use only its terms (clean's expiration, claim's stake and access key).
    A market that does not exist is still ``ABSENT`` (None data), never undecodable."""
    return _view(data, owned, decode_market_terms)


def stake_view(data: bytes | None, *, owned: bool = True) -> StakeView:
    """``owned``: owned by the staking program (``claim`` checks the stake's owner)."""
    return _view(data, owned, decode_stake)


_Key = TypeVar("_Key")
_Value = TypeVar("_Value")


def require(views: Mapping[_Key, _Value], key: _Key, what: str) -> _Value:
    """The view fetched for ``key``; a key that was never fetched is a bug, never "absent".

    Treating an unfetched job or market as gone would turn into ``quitAdmin`` or
    ``cleanAdmin``: callers pass ``ABSENT`` explicitly for accounts that do not exist.
    """
    try:
        return views[key]
    except KeyError:
        raise KeyError(f"no {what} view for {key}: fetch it, or pass ABSENT") from None
