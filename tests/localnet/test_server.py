"""JSON-RPC 2.0 framing of the local chain's HTTP server."""

from __future__ import annotations

import json

import httpx
import pytest


@pytest.fixture
async def http(toy_chain):
    async with httpx.AsyncClient(base_url=toy_chain.url) as session:
        yield session


async def rpc(http, method: str, params: list | None = None, request_id: object = 1) -> dict:
    body = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or []}
    response = await http.post("/", json=body)
    assert response.status_code == 200
    return response.json()


async def test_a_result_echoes_the_request_id(http):
    answer = await rpc(http, "getSlot", request_id="abc")

    assert answer == {"jsonrpc": "2.0", "result": 1_000, "id": "abc"}


async def test_unparseable_json_is_a_parse_error(http):
    response = await http.post(
        "/", content=b"{not json", headers={"content-type": "application/json"}
    )

    assert response.status_code == 200
    assert response.json() == {
        "jsonrpc": "2.0",
        "error": {"code": -32700, "message": "Parse error"},
        "id": None,
    }


@pytest.mark.parametrize(
    "body",
    [{"id": 1, "method": "getSlot"}, {"jsonrpc": "2.0", "id": 1, "method": 5}, 42],
    ids=["no-jsonrpc-version", "method-not-a-string", "not-an-object"],
)
async def test_a_malformed_request_is_an_invalid_request(http, body):
    answer = (await http.post("/", json=body)).json()

    assert answer["error"]["code"] == -32600


async def test_an_unknown_method_is_method_not_found(http):
    answer = await rpc(http, "getBlockProduction")

    assert answer["error"] == {"code": -32601, "message": "Method not found"}
    assert answer["id"] == 1


async def test_a_bad_pubkey_is_invalid_params(http):
    answer = await rpc(http, "getBalance", ["not-a-pubkey"])

    assert answer["error"]["code"] == -32602


async def test_a_missing_parameter_is_invalid_params(http):
    answer = await rpc(http, "getBlockTime")

    assert answer["error"]["code"] == -32602


async def test_more_than_100_keys_in_get_multiple_accounts_is_invalid_params(http, toy_world):
    keys = [str(key) for key in toy_world.accounts] * 21  # 105

    answer = await rpc(http, "getMultipleAccounts", [keys])

    assert answer["error"] == {"code": -32602, "message": "Too many inputs provided; max 100"}


async def test_a_batch_answers_each_call_in_an_array(http):
    batch = [
        {"jsonrpc": "2.0", "id": 1, "method": "getSlot"},
        {"jsonrpc": "2.0", "id": 2, "method": "noSuchMethod"},
        {"jsonrpc": "2.0", "id": 3, "method": "getBlockHeight"},
    ]

    answers = (await http.post("/", json=batch)).json()

    assert [answer["id"] for answer in answers] == [1, 2, 3]
    assert answers[0]["result"] == 1_000
    assert answers[1]["error"]["code"] == -32601
    assert answers[2]["result"] == 900


async def test_an_empty_batch_is_an_invalid_request(http):
    answer = (await http.post("/", json=[])).json()

    assert answer["error"]["code"] == -32600


async def test_a_notification_gets_no_answer(http):
    response = await http.post("/", json={"jsonrpc": "2.0", "method": "getSlot"})

    assert response.status_code == 204
    assert response.content == b""


async def test_a_batch_may_include_a_streamed_answer(http, toy_world):
    batch = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "getProgramAccounts",
            "params": [str(toy_world.program_id), {"encoding": "base64"}],
        },
        {"jsonrpc": "2.0", "id": 2, "method": "getSlot"},
    ]

    answers = (await http.post("/", json=batch)).json()

    assert len(answers[0]["result"]) == 2
    assert answers[1]["result"] == 1_000


async def test_get_program_accounts_is_streamed_in_chunks(http, toy_world):
    body = {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "getProgramAccounts",
        "params": [str(toy_world.program_id), {"encoding": "base64"}],
    }

    response = await http.post("/", json=body)

    assert response.headers["transfer-encoding"] == "chunked"
    answer = json.loads(response.content)
    assert answer["id"] == 7
    assert {item["pubkey"] for item in answer["result"]} == {
        str(toy_world.labels["data_a"]),
        str(toy_world.labels["data_b"]),
    }


async def test_health_answers_ok_over_get(http):
    response = await http.get("/health")

    assert (response.status_code, response.text) == (200, "ok")
