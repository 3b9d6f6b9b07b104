"""The status board: one getSignatureStatuses per round for every waiting signature."""

from __future__ import annotations

import asyncio

import pytest
from fake_rpc import FakeRpc, Http
from solders.signature import Signature

from keeper.chain.rpc import RpcClient
from keeper.chain.status import SignatureStatus, StatusBoard, parse_status
from keeper.errors import RpcError, RpcResponseError

SIGNATURES = [Signature.from_bytes(bytes([n]) * 64) for n in range(1, 4)]


def test_parse_status() -> None:
    assert parse_status(None) is None
    status = parse_status(
        {"slot": 5, "confirmations": 0, "err": None, "confirmationStatus": "processed"}
    )
    assert status == SignatureStatus(slot=5, err=None, confirmation="processed")
    assert not status.reached("confirmed")
    assert status.reached("processed")
    rooted = parse_status({"slot": 5, "confirmations": None, "err": None})
    assert rooted is not None
    assert rooted.reached("finalized")
    with pytest.raises(RpcResponseError):
        parse_status({"confirmations": 1})


async def test_one_request_answers_every_waiter(fake: FakeRpc, rpc: RpcClient) -> None:
    def statuses(params: list[list[str]]) -> dict[str, object]:
        value = [
            {"slot": 9, "confirmations": 1, "err": None, "confirmationStatus": "confirmed"}
            if signature == str(SIGNATURES[0])
            else None
            for signature in params[0]
        ]
        return {"context": {"slot": 9}, "value": value}

    fake.on("getSignatureStatuses", statuses)
    fake.on("getBlockHeight", lambda params: 77)
    board = StatusBoard(rpc, poll_s=0.01, commitment="confirmed")
    answers = await asyncio.gather(
        *(board.next_status(s) for s in SIGNATURES), board.block_height()
    )
    assert answers[0] == SignatureStatus(slot=9, err=None, confirmation="confirmed")
    assert answers[1:3] == [None, None]
    assert answers[3] == 77
    assert fake.count("getSignatureStatuses") == 1
    [params] = fake.params("getSignatureStatuses")
    assert sorted(params[0]) == sorted(str(s) for s in SIGNATURES)
    assert params[1] == {"searchTransactionHistory": False}


async def test_a_failed_round_raises_for_its_waiters_only(fake: FakeRpc, rpc: RpcClient) -> None:
    fake.queue("getSignatureStatuses", *[Http(500)] * 4)
    fake.on("getSignatureStatuses", lambda params: {"context": {"slot": 1}, "value": [None]})
    board = StatusBoard(rpc, poll_s=0.0, commitment="confirmed")
    with pytest.raises(RpcError):
        await board.next_status(SIGNATURES[0])
    assert await board.next_status(SIGNATURES[0]) is None
