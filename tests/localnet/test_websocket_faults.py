"""Websocket fault switches: refuse, drop, stall and close, each deterministic."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from ws_client import connect

from keeper.localnet.clock import GENESIS_SLOT


async def test_ws_refuse_next_refuses_that_many_upgrades_then_accepts(toy_chain):
    toy_chain.set_faults(ws_refuse_next=2)

    for _ in range(2):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            async with connect(toy_chain.ws_url):
                pass
        assert refused.value.status == 503
    async with connect(toy_chain.ws_url) as socket:
        assert "result" in await socket.call("slotSubscribe")

    assert toy_chain.faults.injected["ws_refuse"] == 2


async def test_ws_refuse_every_one_refuses_while_set(toy_chain):
    toy_chain.set_faults(ws_refuse_every=1)
    for _ in range(3):
        with pytest.raises(aiohttp.WSServerHandshakeError):
            async with connect(toy_chain.ws_url):
                pass

    toy_chain.set_faults(ws_refuse_every=0)
    async with connect(toy_chain.ws_url) as socket:
        assert "result" in await socket.call("slotSubscribe")


async def test_ws_refuse_leaves_http_alone(toy_chain):
    toy_chain.set_faults(ws_refuse_every=1)
    async with aiohttp.ClientSession() as session:
        body = {"jsonrpc": "2.0", "id": 1, "method": "getSlot"}
        async with session.post(toy_chain.url, json=body) as response:
            assert (await response.json())["result"] == GENESIS_SLOT


async def test_ws_drop_every_loses_every_nth_notification(toy_chain):
    async with connect(toy_chain.ws_url) as socket:
        await socket.subscribe("slotSubscribe")
        toy_chain.set_faults(ws_drop_every=2)

        toy_chain.advance_slots(6)
        await socket.subscribe("slotSubscribe")  # a round trip: all six were sent or lost
        toy_chain.set_faults(ws_drop_every=0)
        toy_chain.advance_slots(1)
        slots = [(await socket.notification())["params"]["result"]["slot"] for _ in range(5)]

    # The 2nd, 4th and 6th were lost; the last slot reached both subscriptions, unfaulted.
    first = GENESIS_SLOT
    assert slots == [first, first + 2, first + 4, first + 6, first + 6]
    assert toy_chain.faults.injected["ws_drop"] == 3


async def test_ws_close_next_closes_the_socket_in_place_of_a_message(toy_chain):
    async with connect(toy_chain.ws_url) as socket:
        await socket.subscribe("slotSubscribe")
        toy_chain.set_faults(ws_close_next=1)

        toy_chain.advance_slots(1)
        message = await asyncio.wait_for(socket.ws.receive(), 10)

    assert message.type == aiohttp.WSMsgType.CLOSE
    assert message.data == aiohttp.WSCloseCode.INTERNAL_ERROR
    assert toy_chain.faults.injected["ws_close"] == 1
    async with connect(toy_chain.ws_url) as again:  # only that socket: new ones work
        assert "result" in await again.call("slotSubscribe")


async def test_ws_stall_next_silences_that_socket_for_good_but_not_others(toy_chain):
    async with (
        connect(toy_chain.ws_url, autoping=False) as stalled,
        connect(toy_chain.ws_url, autoping=False) as healthy,
    ):
        await stalled.subscribe("slotSubscribe")
        toy_chain.set_faults(ws_stall_next=1)
        toy_chain.advance_slots(1)  # the stalled socket's notification is the faulted message
        assert toy_chain.faults.injected["ws_stall"] == 1

        await stalled.send("slotSubscribe")
        await stalled.ws.ping(b"are you there")
        toy_chain.advance_slots(1)
        # The healthy socket answers round trips, pings included, meanwhile.
        for _ in range(3):
            assert "result" in await healthy.call("slotSubscribe")
        await healthy.ws.ping(b"hi")
        assert (await healthy.ws.receive()).type == aiohttp.WSMsgType.PONG

        with pytest.raises(TimeoutError):  # nothing came: no answer, notification or pong
            await asyncio.wait_for(stalled.ws.receive(), 0.2)
        assert not stalled.ws.closed  # silent, not closed


async def test_websocket_fault_switches_are_validated_and_reported(toy_chain):
    async with aiohttp.ClientSession() as session:
        body = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "localnet_setFaults",
            "params": [{"ws_drop_every": 3, "ws_stall_next": 1}],
        }
        async with session.post(toy_chain.url, json=body) as response:
            answer = (await response.json())["result"]
        body["params"] = [{"ws_close_next": -1}]
        async with session.post(toy_chain.url, json=body) as response:
            rejected = await response.json()

    assert (answer["ws_drop_every"], answer["ws_stall_next"]) == (3, 1)
    assert {"ws_refuse", "ws_drop", "ws_stall", "ws_close"} <= set(answer["injected"])
    assert rejected["error"]["code"] == -32602
