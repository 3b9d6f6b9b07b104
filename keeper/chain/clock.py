"""Chain time: the cluster's ``Clock`` sysvar, the only time decisions are made against.

The program compares against ``Clock.unix_timestamp``, which can differ from wall time by
minutes (days on a test validator), so the keeper reads it instead of the local clock.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from keeper.chain.accounts import get_account
from keeper.errors import RpcResponseError
from keeper.program.ids import CLOCK_SYSVAR

if TYPE_CHECKING:
    from keeper.chain.endpoints import Rpc
    from keeper.chain.scan import Commitment

# slot u64, epoch_start_timestamp i64, epoch u64, leader_schedule_epoch u64, unix_timestamp i64
_CLOCK: Final = struct.Struct("<QqQQq")
CLOCK_SIZE: Final = _CLOCK.size


@dataclass(frozen=True, slots=True)
class ChainTime:
    slot: int
    epoch: int
    unix_timestamp: int

    def lag_behind(self, wall_unix: float) -> float:
        """Seconds chain time trails ``wall_unix`` (negative when the chain runs ahead).

        For metrics and logs only: the caller passes its wall clock, decisions never do.
        """
        return wall_unix - self.unix_timestamp


def decode_clock(data: bytes) -> ChainTime:
    if len(data) < CLOCK_SIZE:
        raise RpcResponseError(f"the Clock sysvar has {len(data)} bytes, expected {CLOCK_SIZE}")
    slot, _epoch_start, epoch, _leader_epoch, unix_timestamp = _CLOCK.unpack_from(data)
    return ChainTime(slot=slot, epoch=epoch, unix_timestamp=unix_timestamp)


async def chain_time(rpc: Rpc, *, commitment: Commitment = "confirmed") -> ChainTime:
    """The cluster's clock at the latest ``commitment`` slot."""
    account = await get_account(rpc, CLOCK_SYSVAR, commitment=commitment)
    if account is None:
        raise RpcResponseError("the node returned no Clock sysvar account")
    return decode_clock(account.data)
