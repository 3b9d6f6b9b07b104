"""Each fault switch, over HTTP (localnet_setFaults) and in-process; all counted, exact."""

from __future__ import annotations

import asyncio
import struct

import httpx
import pytest
from solana.exceptions import SolanaRpcException
from solana.rpc.core import RPCException
from solana.rpc.types import TxOpts

from keeper.localnet.faults import (
    FAULT_NAMES,
    FaultConfig,
    FaultConfigError,
    Faults,
    fault_config,
    parse_fault_specs,
)
from keeper.localnet.ledger import CLOCK_SYSVAR

DAY = 86_400


@pytest.fixture
async def http(toy_chain):
    async with httpx.AsyncClient(base_url=toy_chain.url) as session:
        yield session


async def call(http, method: str, *params: object) -> httpx.Response:
    return await http.post(
        "/", json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    )


async def statuses(http, count: int) -> list[int]:
    return [(await call(http, "getSlot")).status_code for _ in range(count)]


async def test_rate_limit_next_answers_429_with_retry_after_then_recovers(http):
    await call(http, "localnet_setFaults", {"rate_limit_next": 2, "retry_after_seconds": 7})

    first = await call(http, "getSlot")

    assert first.status_code == 429
    assert first.headers["Retry-After"] == "7"
    assert first.json()["error"]["code"] == 429
    assert await statuses(http, 2) == [429, 200]


async def test_rate_limit_every_nth_request(http):
    await call(http, "localnet_setFaults", {"rate_limit_every": 3})

    assert await statuses(http, 6) == [200, 200, 429, 200, 200, 429]


async def test_server_error_next_uses_the_configured_status(http):
    await call(http, "localnet_setFaults", {"server_error_next": 1, "server_error_status": 502})

    assert await statuses(http, 2) == [502, 200]


async def test_server_error_every_nth_request(http):
    await call(http, "localnet_setFaults", {"server_error_every": 2})

    assert await statuses(http, 4) == [200, 503, 200, 503]


async def test_a_batch_is_one_request_for_http_faults(http):
    await call(http, "localnet_setFaults", {"rate_limit_every": 2})
    batch = [{"jsonrpc": "2.0", "id": i, "method": "getSlot"} for i in range(3)]

    assert (await http.post("/", json=batch)).status_code == 200
    assert (await http.post("/", json=batch)).status_code == 429


async def test_control_methods_are_never_faulted(http):
    await call(http, "localnet_setFaults", {"rate_limit_every": 1})

    assert (await call(http, "localnet_getFaults")).status_code == 200
    assert (await call(http, "localnet_clearFaults")).status_code == 200
    assert await statuses(http, 1) == [200]


async def test_latency_delays_every_answer(toy_chain):
    toy_chain.set_faults(latency_ms=400)
    async with httpx.AsyncClient(base_url=toy_chain.url, timeout=0.05) as impatient:
        with pytest.raises(httpx.ReadTimeout):
            await call(impatient, "getSlot")
        # control calls are not delayed
        assert (await call(impatient, "localnet_getFaults")).status_code == 200


async def test_dropped_transactions_return_a_signature_but_never_land(toy_chain, chain_kit, client):
    toy_chain.set_faults(drop_next=1)
    wallet = chain_kit.label("wallet")
    before = chain_kit.balance(wallet)

    dropped = (
        await client.send_raw_transaction(bytes(chain_kit.tx(chain_kit.transfer(wallet, 10))))
    ).value
    landed = (
        await client.send_raw_transaction(bytes(chain_kit.tx(chain_kit.transfer(wallet, 20))))
    ).value

    found = (await client.get_signature_statuses([dropped, landed])).value
    assert found[0] is None
    assert found[1] is not None
    assert chain_kit.balance(wallet) == before + 20


async def past_the_land_delay(chain) -> None:
    """Sleep past the delay on the chain's own loop: its landing timers fire first."""
    await asyncio.sleep(chain.faults.land_delay_seconds + 0.05)
    assert chain.landing() == 0


async def test_land_delay_holds_a_transaction_then_lands_it_once(toy_chain, chain_kit, client):
    toy_chain.set_faults(land_delay_ms=300)
    wallet = chain_kit.label("wallet")
    before = chain_kit.balance(wallet)
    raw = bytes(chain_kit.tx(chain_kit.transfer(wallet, 10)))

    sig = (await client.send_raw_transaction(raw, opts=TxOpts(skip_preflight=True))).value
    again = (await client.send_raw_transaction(raw, opts=TxOpts(skip_preflight=True))).value

    assert again == sig
    assert (await client.get_signature_statuses([sig])).value[0] is None
    assert chain_kit.balance(wallet) == before
    assert toy_chain.landing() == 1  # the re-send is the same transaction on its way
    await past_the_land_delay(toy_chain)
    assert (await client.get_signature_statuses([sig])).value[0] is not None
    assert chain_kit.balance(wallet) == before + 10  # landed once


async def test_land_delay_runs_against_the_ledger_as_it_is_when_landing(toy_chain, chain_kit):
    toy_chain.set_faults(land_delay_ms=200)
    data_b = chain_kit.label("data_b")
    close = bytes(chain_kit.tx(chain_kit.close(data_b, chain_kit.label("wallet"))))
    sig = chain_kit.node.send_transaction(close, skip_preflight=True)
    toy_chain.close_account(data_b)  # closed by someone else before it lands

    await past_the_land_delay(toy_chain)
    record = chain_kit.node.ledger.transaction(sig)
    assert record is not None
    assert record.err is not None  # it ran against the account as it is now: gone


async def test_land_delay_past_the_blockhash_lifetime_never_lands(toy_chain, chain_kit):
    toy_chain.set_faults(land_delay_ms=200)
    wallet = chain_kit.label("wallet")
    before = chain_kit.balance(wallet)
    sig = chain_kit.node.send_transaction(
        bytes(chain_kit.tx(chain_kit.transfer(wallet, 10))), skip_preflight=True
    )
    toy_chain.advance_slots(200)  # its blockhash expires while it is on its way

    await past_the_land_delay(toy_chain)
    assert chain_kit.node.ledger.transaction(sig) is None
    assert chain_kit.balance(wallet) == before


async def test_drop_every_nth_send(toy_chain, chain_kit):
    toy_chain.set_faults(drop_every=2)
    sent = [
        chain_kit.node.send_transaction(
            bytes(chain_kit.tx(chain_kit.write(chain_kit.label("data_a"), struct.pack("<Q", n))))
        )
        for n in range(4)
    ]

    assert [chain_kit.node.ledger.transaction(sig) is not None for sig in sent] == [
        True,
        False,
        True,
        False,
    ]


async def test_a_competitor_closes_the_target_and_preflight_reports_3012(
    toy_chain, chain_kit, client
):
    toy_chain.set_faults(competitor_next=1)
    data_a = chain_kit.label("data_a")
    tx = chain_kit.tx(chain_kit.write(data_a, b"mine!!!!"))

    with pytest.raises(RPCException) as failed:
        await client.send_raw_transaction(bytes(tx))

    assert chain_kit.account(data_a) is None
    assert "0xbc4" in str(failed.value)  # 3012 AccountNotInitialized
    assert toy_chain.faults.injected["competitor"] == 1


async def test_a_competitor_strike_lands_as_a_failed_transaction_without_preflight(
    toy_chain, chain_kit, client
):
    toy_chain.set_faults(competitor_next=1)
    tx = chain_kit.tx(chain_kit.close(chain_kit.label("data_b"), chain_kit.label("wallet")))

    sig = (await client.send_raw_transaction(bytes(tx), opts=TxOpts(skip_preflight=True))).value

    status = (await client.get_signature_statuses([sig])).value[0]
    assert status is not None
    assert (status.err.index, status.err.err.code) == (0, 3012)  # AccountNotInitialized


async def test_the_competitor_only_strikes_the_configured_number_of_times(toy_chain, chain_kit):
    toy_chain.set_faults(competitor_next=1)
    data_a, data_b = chain_kit.label("data_a"), chain_kit.label("data_b")
    chain_kit.node.send_transaction(
        bytes(chain_kit.tx(chain_kit.noop())), skip_preflight=True
    )  # no target
    chain_kit.node.send_transaction(
        bytes(chain_kit.tx(chain_kit.write(data_a, b"x" * 8))), skip_preflight=True
    )
    chain_kit.node.send_transaction(bytes(chain_kit.tx(chain_kit.write(data_b, b"y" * 8))))

    assert chain_kit.account(data_a) is None
    assert chain_kit.account(data_b).data == b"y" * 8


async def fee_answers(http, count: int) -> list[str]:
    """``ok`` or the JSON-RPC error code of each of ``count`` getRecentPrioritizationFees."""
    answers = []
    for _ in range(count):
        response = await call(http, "getRecentPrioritizationFees", [])
        assert response.status_code == 200  # a JSON-RPC error, not an HTTP fault
        body = response.json()
        answers.append("ok" if "result" in body else str(body["error"]["code"]))
    return answers


async def test_fee_source_error_next_answers_a_json_rpc_error_then_recovers(toy_chain, http):
    toy_chain.set_prioritization_fees([7_000])
    await call(http, "localnet_setFaults", {"fee_source_error_next": 2})

    failed = (await call(http, "getRecentPrioritizationFees", [])).json()

    assert failed["error"]["code"] == -32603
    assert "prioritization fee" in failed["error"]["message"]
    assert "result" not in failed
    assert await fee_answers(http, 2) == ["-32603", "ok"]
    recovered = (await call(http, "getRecentPrioritizationFees", [])).json()
    assert [entry["prioritizationFee"] for entry in recovered["result"]] == [7_000]


async def test_fee_source_error_every_nth_call_and_other_methods_are_neither_hit_nor_counted(
    http,
):
    await call(http, "localnet_setFaults", {"fee_source_error_every": 2})

    assert await fee_answers(http, 1) == ["ok"]
    assert await statuses(http, 3) == [200, 200, 200]  # getSlot: not faulted, not counted
    slot = (await call(http, "getSlot")).json()
    assert "result" in slot
    assert await fee_answers(http, 3) == ["-32603", "ok", "-32603"]


async def test_fee_source_error_counts_each_call_of_a_batch(http):
    await call(http, "localnet_setFaults", {"fee_source_error_every": 2})
    batch = [
        {"jsonrpc": "2.0", "id": i, "method": "getRecentPrioritizationFees", "params": [[]]}
        for i in range(4)
    ] + [{"jsonrpc": "2.0", "id": 9, "method": "getSlot"}]

    answers = {item["id"]: item for item in (await http.post("/", json=batch)).json()}

    assert ["error" in answers[i] for i in range(4)] == [False, True, False, True]
    assert "result" in answers[9]


async def test_fee_source_errors_are_reported_as_injected(http):
    await call(http, "localnet_setFaults", {"fee_source_error_next": 3})
    await fee_answers(http, 2)

    snapshot = (await call(http, "localnet_getFaults")).json()["result"]

    assert snapshot["fee_source_error_next"] == 1
    assert snapshot["injected"]["fee_source_error"] == 2
    cleared = (await call(http, "localnet_clearFaults")).json()["result"]
    assert cleared["fee_source_error_next"] == 0
    assert await fee_answers(http, 1) == ["ok"]


async def test_clock_skew_moves_the_clock_sysvar_and_block_time(toy_chain, client, http):
    before = (await client.get_account_info(CLOCK_SYSVAR)).value.data
    await call(http, "localnet_setFaults", {"clock_skew_seconds": 3 * DAY})

    after = (await client.get_account_info(CLOCK_SYSVAR)).value.data
    block_time = (await client.get_block_time(toy_chain.slot)).value

    skewed = struct.unpack_from("<q", after, 32)[0]
    assert skewed == struct.unpack_from("<q", before, 32)[0] + 3 * DAY
    assert block_time == skewed


async def test_get_faults_reports_switches_left_and_injected_counts(http):
    await call(http, "localnet_setFaults", {"rate_limit_next": 3})
    await statuses(http, 1)

    snapshot = (await call(http, "localnet_getFaults")).json()["result"]

    assert snapshot["rate_limit_next"] == 2
    assert snapshot["injected"]["rate_limit"] == 1


async def test_an_unknown_switch_is_invalid_params(http):
    answer = (await call(http, "localnet_setFaults", {"rate_limit_sometimes": 1})).json()

    assert answer["error"]["code"] == -32602


async def test_solana_py_sees_a_429_as_an_http_error(toy_chain, client):
    toy_chain.set_faults(rate_limit_next=1)

    with pytest.raises(SolanaRpcException) as failed:
        await client.get_slot()

    assert isinstance(failed.value.__cause__, httpx.HTTPStatusError)
    assert failed.value.__cause__.response.status_code == 429


def test_fault_specs_parse_from_the_command_line():
    config = parse_fault_specs(
        [
            "rate_limit_every=5",
            "latency_ms=50",
            "clock_skew_seconds=-86400",
            "fee_source_error_every=3",
        ]
    )

    assert config == FaultConfig(
        rate_limit_every=5,
        latency_ms=50,
        clock_skew_seconds=-86400,
        fee_source_error_every=3,
    )


@pytest.mark.parametrize(
    "spec",
    [
        "rate_limit_every",
        "rate_limit_every=x",
        "nonsense=1",
        "drop_next=-1",
        "fee_source_error_next=-1",
    ],
)
def test_bad_fault_specs_are_refused(spec):
    with pytest.raises(FaultConfigError):
        parse_fault_specs([spec])


def test_a_server_error_status_must_be_5xx():
    with pytest.raises(FaultConfigError):
        fault_config({"server_error_status": 404})


def test_every_switch_is_documented_by_name():
    assert set(FAULT_NAMES) == set(FaultConfig.__dataclass_fields__)


class _Clock:
    skew_seconds = 0


def test_set_keeps_the_other_switches_and_resets_only_changed_counters():
    faults = Faults(FaultConfig(rate_limit_every=2), _Clock())
    assert faults.http_fault() is None  # request 1

    faults.set(drop_next=1)

    assert faults.http_fault() is not None  # request 2: the rate_limit counter kept counting
    assert faults.drops_transaction()
    assert not faults.drops_transaction()


def test_clock_skew_applies_to_the_attached_clock():
    clock = _Clock()
    faults = Faults(FaultConfig(), clock)

    faults.set(clock_skew_seconds=-5 * DAY)

    assert clock.skew_seconds == -5 * DAY
