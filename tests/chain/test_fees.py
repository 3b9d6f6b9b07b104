"""Recent prioritization fees: a list, or None (loudly) when the source fails."""

from __future__ import annotations

from fake_rpc import FakeRpc, Http
from solders.pubkey import Pubkey

from keeper.chain.fees import MAX_FEE_ACCOUNTS, recent_prioritization_fees
from keeper.chain.rpc import RpcClient

ACCOUNTS = [Pubkey.from_bytes(i.to_bytes(32, "big")) for i in range(1, 4)]


async def test_fees_per_slot(fake: FakeRpc, rpc: RpcClient) -> None:
    fake.on(
        "getRecentPrioritizationFees",
        lambda params: [
            {"slot": 1, "prioritizationFee": 0},
            {"slot": 2, "prioritizationFee": 5000},
        ],
    )
    assert await recent_prioritization_fees(rpc, ACCOUNTS) == [0, 5000]
    [params] = fake.params("getRecentPrioritizationFees")
    assert params == [[str(k) for k in ACCOUNTS]]


async def test_at_most_128_accounts_are_asked_about(fake: FakeRpc, rpc: RpcClient) -> None:
    fake.on("getRecentPrioritizationFees", lambda params: [])
    many = [Pubkey.from_bytes(i.to_bytes(32, "big")) for i in range(1, 300)]
    assert await recent_prioritization_fees(rpc, many) == []
    assert len(fake.params("getRecentPrioritizationFees")[0][0]) == MAX_FEE_ACCOUNTS


async def test_a_failing_source_gives_none(fake: FakeRpc, rpc: RpcClient) -> None:
    fake.queue("getRecentPrioritizationFees", *[Http(503)] * 10)
    assert await recent_prioritization_fees(rpc, ACCOUNTS) is None


async def test_a_nonsense_answer_gives_none(fake: FakeRpc, rpc: RpcClient) -> None:
    fake.on("getRecentPrioritizationFees", lambda params: [{"slot": 1, "prioritizationFee": "x"}])
    assert await recent_prioritization_fees(rpc, ACCOUNTS) is None
    fake.on("getRecentPrioritizationFees", lambda params: {"oops": 1})
    assert await recent_prioritization_fees(rpc, ACCOUNTS) is None
