"""The websocket pubsub endpoint: subscriptions notified in an Agave node's format, per slot.

The toy chain's clock moves only when a test advances it; everything the node notifies
for a slot is sent when that slot ends, before the slotNotification of that slot.
"""

from __future__ import annotations

import asyncio
import base64
import json
import struct

import aiohttp
import pytest
from solders.rpc.responses import (
    AccountNotification,
    ProgramNotification,
    SignatureNotification,
    SlotNotification,
    parse_websocket_message,
)
from toy_chain import TOY_PROGRAM_ID
from ws_client import connect

from keeper.localnet.clock import GENESIS_SLOT
from keeper.localnet.ledger import CLOCK_SYSVAR
from keeper.localnet.rpc_accounts import RENT_EPOCH
from keeper.localnet.system_program import SYSTEM_PROGRAM


@pytest.fixture
async def ws(toy_chain):
    async with connect(toy_chain.ws_url) as socket:
        yield socket


def land(kit, *instructions) -> object:
    """Land a transaction now (in the current slot); its signature."""
    return kit.node.send_transaction(bytes(kit.tx(*instructions)))


def end_slot(toy_chain) -> int:
    """End the current slot (its notifications go out); the slot that ended."""
    ended = toy_chain.slot
    toy_chain.advance_slots(1)
    return ended


def test_the_websocket_url_is_the_rpc_url_with_ws(toy_chain):
    assert toy_chain.ws_url == "ws" + toy_chain.url.removeprefix("http") + "/"


async def test_account_subscribe_notifies_a_change_in_the_real_format(ws, toy_chain, chain_kit):
    key = chain_kit.label("data_a")
    sub = await ws.subscribe("accountSubscribe", [str(key), {"encoding": "base64"}])

    land(chain_kit, chain_kit.write(key, b"\x07" * 8))
    ended = end_slot(toy_chain)
    message = await ws.notification()

    assert message == {
        "jsonrpc": "2.0",
        "method": "accountNotification",
        "params": {
            "result": {
                "context": {"slot": ended},
                "value": {
                    "data": [base64.b64encode(b"\x07" * 8).decode(), "base64"],
                    "executable": False,
                    "lamports": chain_kit.balance(key),
                    "owner": str(TOY_PROGRAM_ID),
                    "rentEpoch": RENT_EPOCH,
                    "space": 8,
                },
            },
            "subscription": sub,
        },
    }
    parsed = parse_websocket_message(ws_text(message))[0]
    assert isinstance(parsed, AccountNotification)
    assert parsed.result.value.data == b"\x07" * 8


def ws_text(message: dict) -> str:
    return json.dumps(message)


async def test_two_writes_in_one_slot_are_one_notification_of_the_last(ws, toy_chain, chain_kit):
    key = chain_kit.label("data_a")
    await ws.subscribe("accountSubscribe", [str(key), {"encoding": "base64"}])
    await ws.subscribe("slotSubscribe")

    land(chain_kit, chain_kit.write(key, b"\x01" * 8))
    land(chain_kit, chain_kit.write(key, b"\x02" * 8))
    seen = await ws.until_slot(end_slot(toy_chain))

    assert [m["params"]["result"]["value"]["data"][0] for m in seen] == [
        base64.b64encode(b"\x02" * 8).decode()
    ]


async def test_program_subscribe_notifies_matching_accounts_only(ws, toy_chain, chain_kit):
    a, b = chain_kit.label("data_a"), chain_kit.label("data_b")
    everything = await ws.subscribe(
        "programSubscribe", [str(TOY_PROGRAM_ID), {"encoding": "base64"}]
    )
    first_byte_9 = await ws.subscribe(
        "programSubscribe",
        [
            str(TOY_PROGRAM_ID),
            {
                "encoding": "base64",
                "filters": [{"dataSize": 8}, {"memcmp": {"offset": 0, "bytes": "A"}}],
                "dataSlice": {"offset": 1, "length": 2},
            },
        ],
    )  # base58 "A" is the byte 9
    await ws.subscribe("slotSubscribe")

    land(chain_kit, chain_kit.write(a, b"\x09\x0a\x0b" + bytes(5)), chain_kit.write(b, bytes(8)))
    ended = end_slot(toy_chain)
    seen = await ws.until_slot(ended)

    by_sub = {}
    for message in seen:
        assert message["method"] == "programNotification"
        by_sub.setdefault(message["params"]["subscription"], []).append(message)
    assert {m["params"]["result"]["value"]["pubkey"] for m in by_sub[everything]} == {
        str(a),
        str(b),
    }
    [sliced] = by_sub[first_byte_9]
    assert sliced["params"]["result"]["context"] == {"slot": ended}
    value = sliced["params"]["result"]["value"]
    assert value["pubkey"] == str(a)
    assert value["account"]["data"] == [base64.b64encode(b"\x0a\x0b").decode(), "base64"]
    assert value["account"]["space"] == 8
    parsed = parse_websocket_message(ws_text(sliced))[0]
    assert isinstance(parsed, ProgramNotification)
    assert str(parsed.result.value.pubkey) == str(a)


async def test_a_close_is_an_account_notification_but_no_program_notification(
    ws, toy_chain, chain_kit
):
    key, wallet = chain_kit.label("data_a"), chain_kit.label("wallet")
    account_sub = await ws.subscribe("accountSubscribe", [str(key), {"encoding": "base64"}])
    program_sub = await ws.subscribe(
        "programSubscribe", [str(TOY_PROGRAM_ID), {"encoding": "base64"}]
    )
    await ws.subscribe("slotSubscribe")

    land(chain_kit, chain_kit.close(key, wallet))
    seen = await ws.until_slot(end_slot(toy_chain))

    assert [m["params"]["subscription"] for m in seen] == [account_sub]
    assert program_sub not in {m["params"]["subscription"] for m in seen}
    assert seen[0]["params"]["result"]["value"] == {
        "data": ["", "base64"],
        "executable": False,
        "lamports": 0,
        "owner": str(SYSTEM_PROGRAM),
        "rentEpoch": 0,
        "space": 0,
    }


async def test_slot_subscribe_notifies_every_slot(ws, toy_chain):
    sub = await ws.subscribe("slotSubscribe")

    toy_chain.advance_slots(2)
    first, second = await ws.notification(), await ws.notification()

    assert first == {
        "jsonrpc": "2.0",
        "method": "slotNotification",
        "params": {
            "result": {"parent": GENESIS_SLOT - 1, "root": GENESIS_SLOT, "slot": GENESIS_SLOT},
            "subscription": sub,
        },
    }
    assert second["params"]["result"]["slot"] == GENESIS_SLOT + 1
    assert isinstance(parse_websocket_message(ws_text(first))[0], SlotNotification)


async def test_the_clock_sysvar_is_notified_every_slot_with_chain_time(ws, toy_chain):
    await ws.subscribe("accountSubscribe", [str(CLOCK_SYSVAR), {"encoding": "base64"}])
    toy_chain.set_clock(1_800_000_000)

    toy_chain.advance_slots(1)
    message = await ws.notification()

    data = base64.b64decode(message["params"]["result"]["value"]["data"][0])
    slot, _, _, _, unix_timestamp = struct.unpack("<QqQQq", data)
    assert (slot, unix_timestamp) == (GENESIS_SLOT, 1_800_000_000)


async def test_signature_subscribe_notifies_once_then_ends(ws, toy_chain, chain_kit):
    tx = chain_kit.tx(chain_kit.noop())
    sub = await ws.subscribe(
        "signatureSubscribe", [str(tx.signatures[0]), {"commitment": "finalized"}]
    )
    await ws.subscribe("slotSubscribe")

    chain_kit.node.send_transaction(bytes(tx))
    ended = end_slot(toy_chain)
    message = await ws.notification()

    assert message == {
        "jsonrpc": "2.0",
        "method": "signatureNotification",
        "params": {
            "result": {"context": {"slot": ended}, "value": {"err": None}},
            "subscription": sub,
        },
    }
    assert isinstance(parse_websocket_message(ws_text(message))[0], SignatureNotification)
    gone = await ws.call("signatureUnsubscribe", [sub])
    assert gone["error"]["message"] == "Invalid subscription id."


async def test_a_failed_transaction_is_notified_with_its_error(ws, toy_chain, chain_kit):
    tx = chain_kit.tx(chain_kit.fail(42))
    await ws.subscribe("signatureSubscribe", [str(tx.signatures[0])])

    chain_kit.node.send_transaction(bytes(tx), skip_preflight=True)
    end_slot(toy_chain)
    message = await ws.notification()

    assert message["params"]["result"]["value"]["err"] == {"InstructionError": [0, {"Custom": 42}]}


async def test_unsubscribe_stops_notifications(ws, toy_chain, chain_kit):
    key = chain_kit.label("data_a")
    sub = await ws.subscribe("accountSubscribe", [str(key)])
    await ws.subscribe("slotSubscribe")

    assert await ws.call("accountUnsubscribe", [sub]) == {"jsonrpc": "2.0", "result": True, "id": 3}
    land(chain_kit, chain_kit.write(key, b"\x05" * 8))

    assert await ws.until_slot(end_slot(toy_chain)) == []


@pytest.mark.parametrize(
    ("method", "params"),
    [("accountUnsubscribe", [12345]), ("programUnsubscribe", [0])],
    ids=["unknown-id", "other-kind"],
)
async def test_unsubscribe_of_an_unknown_or_other_kind_of_id_is_an_error(ws, method, params):
    await ws.subscribe("slotSubscribe")  # id 0: a slot subscription, not a program one

    answer = await ws.call(method, params)

    assert answer["error"] == {"code": -32602, "message": "Invalid subscription id."}


async def test_another_connection_cannot_unsubscribe_mine(ws, toy_chain):
    sub = await ws.subscribe("slotSubscribe")
    async with connect(toy_chain.ws_url) as other:
        answer = await other.call("slotUnsubscribe", [sub])

    assert answer["error"]["code"] == -32602


async def test_subscription_ids_are_unique_and_answers_echo_request_ids(ws, toy_chain):
    first = await ws.call("slotSubscribe")
    second = await ws.call("slotSubscribe")

    assert first["id"] == 1
    assert second["id"] == 2
    assert first["result"] != second["result"]


@pytest.mark.parametrize(
    ("method", "params", "code"),
    [
        ("getSlot", [], -32601),
        ("accountSubscribe", ["not a key"], -32602),
        ("programSubscribe", [str(TOY_PROGRAM_ID), {"encoding": "hex"}], -32602),
        ("accountSubscribe", [str(TOY_PROGRAM_ID), {"commitment": "soon"}], -32602),
    ],
    ids=["http-method", "bad-key", "bad-encoding", "bad-commitment"],
)
async def test_bad_requests_answer_json_rpc_errors(ws, method, params, code):
    answer = await ws.call(method, params)

    assert answer["error"]["code"] == code


async def test_a_closed_connection_forgets_its_subscriptions(toy_chain):
    async with connect(toy_chain.ws_url) as socket:
        await socket.subscribe("slotSubscribe")
        assert len(toy_chain.node.pubsub) == 1
    async with connect(toy_chain.ws_url) as probe:  # a round trip after the close
        await probe.call("slotSubscribe")

    assert len(toy_chain.node.pubsub) == 1


async def test_base58_past_128_bytes_is_agaves_error_marker(ws, toy_chain, chain_kit):
    key = chain_kit.label("data_a")
    await ws.subscribe("accountSubscribe", [str(key), {"encoding": "base58"}])

    land(chain_kit, chain_kit.write(key, bytes(200)))
    end_slot(toy_chain)
    message = await ws.notification()

    value = message["params"]["result"]["value"]
    assert value["data"] == ["error: data too large for bs58 encoding", "base58"]
    assert value["space"] == 200


async def test_a_plain_get_of_the_root_is_not_a_websocket(toy_chain):
    async with aiohttp.ClientSession() as session, session.get(toy_chain.url + "/") as response:
        assert response.status == 405


async def test_pings_are_answered(toy_chain):
    async with connect(toy_chain.ws_url, autoping=False) as socket:
        await socket.ws.ping(b"hello")
        message = await socket.ws.receive()

    assert (message.type, message.data) == (aiohttp.WSMsgType.PONG, b"hello")


async def test_the_websockets_library_connects_without_a_trailing_slash(toy_chain):
    from websockets.asyncio.client import connect as ws_connect  # noqa: PLC0415

    url = "ws" + toy_chain.url.removeprefix("http")  # what a keeper derives: no path
    async with ws_connect(url) as socket:
        await socket.send(json.dumps({"jsonrpc": "2.0", "id": 7, "method": "slotSubscribe"}))
        answer = json.loads(await asyncio.wait_for(socket.recv(), 10))
        toy_chain.advance_slots(1)
        notification = json.loads(await asyncio.wait_for(socket.recv(), 10))

    assert answer == {"jsonrpc": "2.0", "result": answer["result"], "id": 7}
    assert notification["params"]["subscription"] == answer["result"]
