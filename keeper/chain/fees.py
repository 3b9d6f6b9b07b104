"""Recent prioritization fees: the market price of a compute unit for our accounts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import structlog

from keeper.errors import RpcError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from solders.pubkey import Pubkey

    from keeper.chain.endpoints import Rpc

log = structlog.get_logger("keeper.chain.fees")

MAX_FEE_ACCOUNTS: Final = 128  # the RPC's own limit for getRecentPrioritizationFees


async def recent_prioritization_fees(
    rpc: Rpc, writable_accounts: Sequence[Pubkey]
) -> list[int] | None:
    """Per-slot prioritization fees (micro-lamports per CU) paid recently for these accounts.

    ``None`` when the source fails or answers nonsense: the caller then falls back to its
    floor and says so (never silently to zero). An empty list means no recent data.
    """
    keys = [str(key) for key in writable_accounts[:MAX_FEE_ACCOUNTS]]
    try:
        result = await rpc.call("getRecentPrioritizationFees", [keys])
    except RpcError as error:
        log.warning("fee source failed", error=str(error))
        return None
    fees = _parse(result)
    if fees is None:
        log.warning("fee source answered in an unexpected shape")
    return fees


def _parse(result: object) -> list[int] | None:
    if not isinstance(result, list):
        return None
    fees = []
    for entry in result:
        fee = entry.get("prioritizationFee") if isinstance(entry, dict) else None
        if not isinstance(fee, int) or fee < 0:
            return None
        fees.append(fee)
    return fees
