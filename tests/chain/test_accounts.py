"""getMultipleAccounts in chunks of 100, in order; single accounts and balances."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from fake_rpc import FakeRpc, Http
from solders.pubkey import Pubkey

from keeper.chain.accounts import RawAccount, get_account, get_balance, get_multiple_accounts
from keeper.chain.rpc import RpcClient
from keeper.errors import RpcResponseError, RpcServerError

OWNER = Pubkey.from_string("nosJhNRqr2bc9g1nfGDcXXTXvYUmxD4cVwy2pMWhrYM")


def keys(n: int) -> list[Pubkey]:
    return [Pubkey.from_bytes(i.to_bytes(32, "big")) for i in range(1, n + 1)]


def value_for(key: str) -> dict[str, Any] | None:
    n = int.from_bytes(Pubkey.from_string(key).__bytes__(), "big")
    if n % 7 == 0:
        return None  # every seventh account does not exist
    return {
        "data": [base64.b64encode(n.to_bytes(4, "little")).decode(), "base64"],
        "executable": False,
        "lamports": n * 10,
        "owner": str(OWNER),
        "rentEpoch": 2**64 - 1,
        "space": 4,
    }


def serve_multiple(fake: FakeRpc) -> None:
    fake.on(
        "getMultipleAccounts",
        lambda params: {"context": {"slot": 1}, "value": [value_for(k) for k in params[0]]},
    )


async def test_chunks_of_100_come_back_in_order(fake: FakeRpc, rpc: RpcClient) -> None:
    serve_multiple(fake)
    wanted = keys(250)
    accounts = await get_multiple_accounts(rpc, wanted, concurrency=2)
    assert [len(p[0]) for p in fake.params("getMultipleAccounts")] == [100, 100, 50]
    assert len(accounts) == 250
    for n, (key, account) in enumerate(zip(wanted, accounts, strict=True), start=1):
        if n % 7 == 0:
            assert account is None
        else:
            assert account == RawAccount(key, n * 10, OWNER, n.to_bytes(4, "little"))


async def test_no_keys_means_no_request(fake: FakeRpc, rpc: RpcClient) -> None:
    assert await get_multiple_accounts(rpc, []) == []
    assert fake.count("getMultipleAccounts") == 0


async def test_the_request_asks_for_base64_and_the_slice(fake: FakeRpc, rpc: RpcClient) -> None:
    serve_multiple(fake)
    await get_multiple_accounts(rpc, keys(1), data_slice={"offset": 8, "length": 32})
    [params] = fake.params("getMultipleAccounts")
    assert params[1] == {
        "encoding": "base64",
        "commitment": "confirmed",
        "dataSlice": {"offset": 8, "length": 32},
    }


async def test_one_failing_chunk_fails_the_call_with_its_typed_error(
    fake: FakeRpc, rpc: RpcClient
) -> None:
    serve_multiple(fake)
    fake.queue("getMultipleAccounts", *[Http(500)] * 10)
    with pytest.raises(RpcServerError):
        await get_multiple_accounts(rpc, keys(300), concurrency=1)


async def test_a_short_answer_is_a_response_error(fake: FakeRpc, rpc: RpcClient) -> None:
    fake.on("getMultipleAccounts", lambda params: {"context": {"slot": 1}, "value": [None]})
    with pytest.raises(RpcResponseError, match="expected 2"):
        await get_multiple_accounts(rpc, keys(2))


async def test_get_account(fake: FakeRpc, rpc: RpcClient) -> None:
    fake.on(
        "getAccountInfo", lambda params: {"context": {"slot": 1}, "value": value_for(params[0])}
    )
    [present, absent] = keys(8)[5], keys(7)[6]
    account = await get_account(rpc, present)
    assert account is not None
    assert account.lamports == 60
    assert await get_account(rpc, absent) is None


async def test_get_balance(fake: FakeRpc, rpc: RpcClient) -> None:
    fake.on("getBalance", lambda params: {"context": {"slot": 1}, "value": 123_456})
    assert await get_balance(rpc, keys(1)[0]) == 123_456
    fake.on("getBalance", lambda params: {"context": {"slot": 1}})
    with pytest.raises(RpcResponseError):
        await get_balance(rpc, keys(1)[0])
