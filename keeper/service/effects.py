"""What the chain shows of a batch: the accounts its actions change, read after the send.

A status is one RPC's word; the accounts are the chain's. A close (clean, cleanAdmin,
quitAdmin) shows as its target gone; a claim as its run account present (its address is
derived from the node's key and the job, so only this node's claim can create it).
Lamports reclaimed and claim rent are counted only for actions the chain shows, and a
batch whose status source failed (``unknown``) counts as landed only when every one of
its actions shows.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import structlog

from keeper.chain.accounts import get_multiple_accounts
from keeper.chain.keypair import run_keypair
from keeper.chain.outcome import BatchResult, SendOutcome
from keeper.errors import RpcError
from keeper.program.instructions import MaintenanceInstruction

if TYPE_CHECKING:
    from collections.abc import Sequence

    from solders.keypair import Keypair
    from solders.pubkey import Pubkey

    from keeper.chain.endpoints import Rpc
    from keeper.tasks.plan import Action

log = structlog.get_logger("keeper")

# Outcomes whose effects are read back: the status said landed, or could not say.
_READ_BACK = frozenset({SendOutcome.CONFIRMED, SendOutcome.UNKNOWN})


def effect_account(action: Action, node: Keypair | None) -> Pubkey:
    """The account whose state shows ``action`` done: the run a claim creates, else the
    account the action closes."""
    if action.kind is MaintenanceInstruction.CLAIM:
        if node is None:
            raise ValueError("a claim needs the node authority's keypair")
        return run_keypair(node, action.account).pubkey()
    return action.account


async def shown(
    rpc: Rpc, actions: Sequence[Action], result: BatchResult, node: Keypair | None
) -> frozenset[int]:
    """Indices of ``result.kept`` whose effect the chain shows now (none if it cannot be read)."""
    if result.outcome not in _READ_BACK or not result.kept:
        return frozenset()
    kept = [actions[i] for i in result.kept]
    try:
        accounts = await get_multiple_accounts(rpc, [effect_account(a, node) for a in kept])
    except RpcError as error:
        log.warning("cannot read back what the batch changed", error=str(error))
        return frozenset()
    return frozenset(
        index
        for index, action, account in zip(result.kept, kept, accounts, strict=True)
        if (account is not None) == (action.kind is MaintenanceInstruction.CLAIM)
    )


def settle(result: BatchResult, seen: frozenset[int]) -> BatchResult:
    """The outcome the chain supports: ``unknown`` with every action shown landed
    (``confirmed``); ``confirmed`` with none shown is only a status's word (``unknown``)."""
    if not result.kept or result.outcome not in _READ_BACK:
        return result
    if result.outcome is SendOutcome.UNKNOWN and seen >= set(result.kept):
        log.info("the chain shows the batch landed", signature=str(result.signature))
        return dataclasses.replace(result, outcome=SendOutcome.CONFIRMED, error=None)
    if result.outcome is SendOutcome.CONFIRMED and not seen:
        log.warning(
            "status says confirmed but the chain shows none of it",
            signature=str(result.signature),
        )
        return dataclasses.replace(
            result,
            outcome=SendOutcome.UNKNOWN,
            error="confirmed by status, not shown by the accounts",
        )
    return result
