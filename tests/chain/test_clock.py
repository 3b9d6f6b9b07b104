"""Chain time comes from the Clock sysvar, decoded from its 40 bytes."""

from __future__ import annotations

import base64
import struct

import pytest
from fake_rpc import FakeRpc

from keeper.chain.clock import CLOCK_SIZE, ChainTime, chain_time, decode_clock
from keeper.chain.rpc import RpcClient
from keeper.errors import RpcResponseError
from keeper.program.ids import CLOCK_SYSVAR

# slot, epoch_start_timestamp, epoch, leader_schedule_epoch, unix_timestamp
CLOCK = struct.pack("<QqQQq", 312_000_123, 1_699_000_000, 722, 723, 1_700_000_042)


def test_decode_clock() -> None:
    assert CLOCK_SIZE == 40
    assert decode_clock(CLOCK) == ChainTime(
        slot=312_000_123, epoch=722, unix_timestamp=1_700_000_042
    )


def test_a_negative_timestamp_decodes_signed() -> None:
    data = struct.pack("<QqQQq", 1, 0, 0, 0, -5)
    assert decode_clock(data).unix_timestamp == -5


def test_a_short_clock_is_a_response_error() -> None:
    with pytest.raises(RpcResponseError, match="40"):
        decode_clock(CLOCK[:39])


def test_lag_is_wall_minus_chain() -> None:
    now = decode_clock(CLOCK)
    assert now.lag_behind(1_700_000_050.5) == 8.5
    assert now.lag_behind(1_700_000_000.0) == -42.0  # the chain runs ahead


async def test_chain_time_reads_the_clock_sysvar(fake: FakeRpc, rpc: RpcClient) -> None:
    fake.on(
        "getAccountInfo",
        lambda params: {
            "context": {"slot": 312_000_124},
            "value": {
                "data": [base64.b64encode(CLOCK).decode(), "base64"],
                "executable": False,
                "lamports": 1_169_280,
                "owner": "Sysvar1111111111111111111111111111111111111",
                "rentEpoch": 0,
                "space": 40,
            },
        },
    )
    assert (await chain_time(rpc)).unix_timestamp == 1_700_000_042
    [params] = fake.params("getAccountInfo")
    assert params[0] == str(CLOCK_SYSVAR)


async def test_a_missing_clock_is_a_response_error(fake: FakeRpc, rpc: RpcClient) -> None:
    fake.on("getAccountInfo", lambda params: {"context": {"slot": 1}, "value": None})
    with pytest.raises(RpcResponseError, match="Clock"):
        await chain_time(rpc)
