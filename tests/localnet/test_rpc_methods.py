"""A solana-py AsyncClient round trip for every RPC method the local chain serves."""

from __future__ import annotations

import base64
import struct

import based58
import httpx
import pytest
from solana.rpc.async_api import AsyncClient
from solana.rpc.core import RPCException
from solana.rpc.types import DataSliceOpts, MemcmpOpts, TxOpts
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.rpc.errors import SendTransactionPreflightFailureMessage
from solders.rpc.requests import IsBlockhashValid
from solders.rpc.responses import IsBlockhashValidResp
from solders.signature import Signature
from solders.transaction import VersionedTransaction
from toy_chain import GENESIS_TIME, TOY_PROGRAM_ID, TOY_UNITS

from keeper.localnet.chain import LocalChain
from keeper.localnet.clock import GENESIS_BLOCK_HEIGHT, GENESIS_SLOT, MAX_BLOCKHASH_AGE
from keeper.localnet.ledger import CLOCK_SYSVAR, rent_exempt_minimum
from keeper.program import instructions
from keeper.program.error_codes import ACCOUNT_NOT_INITIALIZED
from keeper.program.layouts import JobOffset


async def raw_call(url: str, method: str, *params: object) -> dict:
    async with httpx.AsyncClient() as http:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
        return (await http.post(url, json=body)).json()


# -- cluster ------------------------------------------------------------------------------


async def test_get_health(client):
    assert await client.is_connected()


async def test_get_version(client):
    assert (await client.get_version()).value.solana_core == "2.1.21"


async def test_get_genesis_hash_is_stable_per_world(client, toy_chain):
    genesis = (await client.get_genesis_hash()).value

    assert genesis == toy_chain.ledger.clock.genesis_hash


async def test_get_slot_and_block_height_advance_together(client, toy_chain):
    toy_chain.advance_slots(5)

    assert (await client.get_slot()).value == GENESIS_SLOT + 5
    assert (await client.get_block_height()).value == GENESIS_BLOCK_HEIGHT + 5


async def test_get_epoch_info(client):
    info = (await client.get_epoch_info()).value

    assert (info.epoch, info.slot_index, info.slots_in_epoch) == (0, GENESIS_SLOT, 432_000)
    assert info.block_height == GENESIS_BLOCK_HEIGHT


async def test_get_latest_blockhash_is_valid_for_150_blocks(client):
    latest = (await client.get_latest_blockhash()).value

    assert latest.last_valid_block_height == GENESIS_BLOCK_HEIGHT + MAX_BLOCKHASH_AGE


async def test_is_blockhash_valid(client, toy_chain):
    latest = (await client.get_latest_blockhash()).value.blockhash
    provider = client._provider  # solana-py 0.36 has no wrapper for isBlockhashValid

    fresh = await provider.make_request(IsBlockhashValid(latest), IsBlockhashValidResp)
    toy_chain.advance_slots(MAX_BLOCKHASH_AGE + 1)
    stale = await provider.make_request(IsBlockhashValid(latest), IsBlockhashValidResp)

    assert (fresh.value, stale.value) == (True, False)


async def test_get_block_time_follows_the_chain_clock_not_wall_time(client, toy_chain):
    toy_chain.advance_slots(10)  # 10 x 400 ms
    toy_chain.skew_clock(-2 * 86_400)

    assert (await client.get_block_time(GENESIS_SLOT)).value == GENESIS_TIME
    assert (await client.get_block_time(GENESIS_SLOT + 10)).value == GENESIS_TIME + 4 - 2 * 86_400


async def test_get_block_time_of_a_future_slot_is_not_available(client):
    with pytest.raises(RPCException, match="Block not available"):
        await client.get_block_time(GENESIS_SLOT + 1_000)


async def test_get_minimum_balance_for_rent_exemption(client):
    job = (await client.get_minimum_balance_for_rent_exemption(240)).value
    run = (await client.get_minimum_balance_for_rent_exemption(120)).value

    assert (job, run) == (2_561_280, 1_726_080)


async def test_get_recent_prioritization_fees(toy_chain):
    toy_chain.set_prioritization_fees([0, 5_000, 12_000])
    # solana-py 0.36 has no client method for it: plain JSON-RPC.
    answer = await raw_call(toy_chain.url, "getRecentPrioritizationFees", [str(TOY_PROGRAM_ID)])

    assert answer["result"] == [
        {"slot": GENESIS_SLOT - 2, "prioritizationFee": 0},
        {"slot": GENESIS_SLOT - 1, "prioritizationFee": 5_000},
        {"slot": GENESIS_SLOT, "prioritizationFee": 12_000},
    ]


# -- accounts -----------------------------------------------------------------------------


async def test_get_account_info(client, toy_world):
    account = (await client.get_account_info(toy_world.labels["data_b"])).value

    assert (account.owner, account.data, account.lamports) == (
        TOY_PROGRAM_ID,
        b"\x01" * 8,
        rent_exempt_minimum(8),
    )


async def test_get_account_info_of_nothing_is_none(client):
    assert (await client.get_account_info(Pubkey.new_unique())).value is None


async def test_get_account_info_serves_the_clock_sysvar(client):
    data = (await client.get_account_info(CLOCK_SYSVAR)).value.data

    assert struct.unpack("<QqQQq", data)[0] == GENESIS_SLOT
    assert struct.unpack("<QqQQq", data)[4] == GENESIS_TIME


async def test_get_multiple_accounts_with_a_data_slice(client, toy_world):
    keys = [toy_world.labels["data_b"], Pubkey.new_unique()]

    accounts = (
        await client.get_multiple_accounts(keys, data_slice=DataSliceOpts(offset=2, length=3))
    ).value

    assert accounts[0].data == b"\x01" * 3
    assert accounts[1] is None


async def test_get_balance(client, toy_world):
    assert (await client.get_balance(toy_world.labels["wallet"])).value == 1_000_000_000


async def test_get_program_accounts_with_memcmp_datasize_and_slice(client, toy_world):
    found = (
        await client.get_program_accounts(
            TOY_PROGRAM_ID,
            encoding="base64",
            data_slice=DataSliceOpts(offset=0, length=2),
            filters=[8, MemcmpOpts(offset=3, bytes=based58.b58encode(b"\x01\x01").decode())],
        )
    ).value

    assert [(item.pubkey, item.account.data) for item in found] == [
        (toy_world.labels["data_b"], b"\x01\x01")
    ]


async def test_get_program_accounts_with_base64_memcmp_and_context(toy_chain, toy_world):
    memcmp = {"offset": 0, "bytes": base64.b64encode(bytes(8)).decode(), "encoding": "base64"}
    answer = await raw_call(
        toy_chain.url,
        "getProgramAccounts",
        str(TOY_PROGRAM_ID),
        {"encoding": "base64", "filters": [{"memcmp": memcmp}], "withContext": True},
    )

    result = answer["result"]
    assert result["context"]["slot"] == GENESIS_SLOT
    assert [item["pubkey"] for item in result["value"]] == [str(toy_world.labels["data_a"])]


async def test_get_program_accounts_with_a_non_matching_size_is_empty(client):
    assert (
        await client.get_program_accounts(TOY_PROGRAM_ID, encoding="base64", filters=[240])
    ).value == []


# -- transactions -------------------------------------------------------------------------


async def test_get_fee_for_message(client, chain_kit):
    message = chain_kit.tx(
        chain_kit.cu_limit(100_000), chain_kit.cu_price(10_000), chain_kit.noop()
    ).message

    assert (await client.get_fee_for_message(message)).value == 5_000 + 1_000


async def test_get_fee_for_message_with_an_unknown_blockhash_is_none(client, chain_kit):
    message = chain_kit.tx(chain_kit.noop()).message
    chain_kit.node.ledger.clock.advance(MAX_BLOCKHASH_AGE + 1)

    assert (await client.get_fee_for_message(message)).value is None


async def test_simulate_transaction(client, chain_kit):
    simulation = (
        await client.simulate_transaction(
            chain_kit.tx(chain_kit.write(chain_kit.label("data_a"), b"12345678"))
        )
    ).value

    assert simulation.err is None
    assert simulation.units_consumed == TOY_UNITS + 1_000
    assert simulation.logs[0] == f"Program {TOY_PROGRAM_ID} invoke [1]"


async def test_simulate_transaction_reports_the_error(client, chain_kit):
    simulation = (await client.simulate_transaction(chain_kit.tx(chain_kit.fail(6005)))).value

    assert (simulation.err.index, simulation.err.err.code) == (0, 6005)
    assert f"Program {TOY_PROGRAM_ID} failed: custom program error: 0x1775" in simulation.logs


async def test_simulate_with_sig_verify_rejects_a_bad_signature(client, chain_kit):
    good = chain_kit.tx(chain_kit.noop())
    forged = VersionedTransaction.populate(good.message, [Signature.default()])

    with pytest.raises(RPCException):
        await client.simulate_transaction(forged, sig_verify=True)
    assert (await client.simulate_transaction(forged)).value.err is None


async def test_send_transaction_base64_then_statuses_and_transaction(client, chain_kit):
    tx = chain_kit.tx(chain_kit.write(chain_kit.label("data_a"), b"abcdefgh"))

    sig = (await client.send_raw_transaction(bytes(tx))).value
    status = (await client.get_signature_statuses([sig])).value[0]
    fetched = (await client.get_transaction(sig, max_supported_transaction_version=0)).value

    assert status.err is None
    assert status.slot == GENESIS_SLOT
    meta = fetched.transaction.meta
    assert (meta.fee, meta.err, meta.compute_units_consumed) == (5_000, None, TOY_UNITS + 1_000)
    assert meta.pre_balances[0] - meta.post_balances[0] == 5_000
    assert meta.log_messages[-1] == f"Program {TOY_PROGRAM_ID} success"
    assert fetched.block_time == GENESIS_TIME


async def test_send_transaction_base58(toy_chain, chain_kit):
    tx = chain_kit.tx(chain_kit.noop())

    answer = await raw_call(toy_chain.url, "sendTransaction", based58.b58encode(bytes(tx)).decode())

    assert answer["result"] == str(tx.signatures[0])


async def test_send_transaction_preflight_failure_is_32002_with_logs(client, chain_kit):
    with pytest.raises(RPCException) as failed:
        await client.send_raw_transaction(bytes(chain_kit.tx(chain_kit.fail(6005))))

    message = failed.value.args[0]
    assert isinstance(message, SendTransactionPreflightFailureMessage)
    assert message.message == (
        "Transaction simulation failed: Error processing Instruction 0: "
        "custom program error: 0x1775"
    )
    assert message.data.units_consumed == TOY_UNITS + 1_000
    assert message.data.logs


async def test_send_transaction_too_large_is_invalid_params(toy_chain):
    answer = await raw_call(
        toy_chain.url,
        "sendTransaction",
        base64.b64encode(bytes(1300)).decode(),
        {"encoding": "base64"},
    )

    assert answer["error"]["code"] == -32602
    assert "too large" in answer["error"]["message"]


async def test_get_signature_statuses_needs_history_search_for_old_transactions(
    client, toy_chain, chain_kit
):
    sig = (await client.send_raw_transaction(bytes(chain_kit.tx(chain_kit.noop())))).value
    toy_chain.advance_slots(301)

    recent_only = (await client.get_signature_statuses([sig])).value[0]
    searched = (await client.get_signature_statuses([sig], search_transaction_history=True)).value[
        0
    ]

    assert recent_only is None
    assert searched.confirmation_status is not None
    assert str(searched.confirmation_status) == "TransactionConfirmationStatus.Finalized"


async def test_get_transaction_base64(client, chain_kit):
    tx = chain_kit.tx(chain_kit.noop(), legacy=True)
    sig = (await client.send_raw_transaction(bytes(tx))).value

    fetched = (await client.get_transaction(sig, encoding="base64")).value

    assert bytes(fetched.transaction.transaction) == bytes(tx)


async def test_get_transaction_of_a_v0_transaction_needs_max_supported_version(client, chain_kit):
    sig = (await client.send_raw_transaction(bytes(chain_kit.tx(chain_kit.noop())))).value

    with pytest.raises(RPCException, match="maxSupportedTransactionVersion"):
        await client.get_transaction(sig)


async def test_get_transaction_of_an_unknown_signature_is_none(client):
    assert (
        await client.get_transaction(Signature.default(), max_supported_transaction_version=0)
    ).value is None


# -- control ------------------------------------------------------------------------------


async def test_localnet_controls_over_json_rpc(toy_chain):
    url = toy_chain.url

    assert (await raw_call(url, "localnet_advanceSlots", 3))["result"] == GENESIS_SLOT + 3
    assert (await raw_call(url, "localnet_setClock", 2_000_000_000))["result"] == 2_000_000_000
    assert (await raw_call(url, "localnet_skewClock", -60))["result"] == 2_000_000_000 - 60
    clock = (await raw_call(url, "localnet_getClock"))["result"]
    assert clock == {
        "slot": GENESIS_SLOT + 3,
        "blockHeight": GENESIS_BLOCK_HEIGHT + 3,
        "unixTimestamp": 2_000_000_000 - 60,
        "skewSeconds": -60,
    }
    assert (await raw_call(url, "localnet_setPrioritizationFees", [1, 2]))["result"] == [1, 2]


# -- the jobs program ---------------------------------------------------------------------


async def test_clean_admin_round_trip_on_the_demo_world():
    async with (
        LocalChain.start("demo", auto_advance=False) as chain,
        AsyncClient(chain.url) as client,
    ):
        world = chain.world
        job = world.labels["done_market_gone"]
        job_account = (await client.get_account_info(job)).value
        payer = Pubkey(job_account.data[JobOffset.PAYER : JobOffset.PAYER + 32])
        payer_before = (await client.get_balance(payer)).value
        ix = instructions.clean_admin(
            instructions.CleanAdminAccounts(job=job, payer=payer, authority=world.market_admin),
            program_id=world.program_id,
        )
        keeper = world.keypairs["keeper"]
        blockhash = (await client.get_latest_blockhash()).value.blockhash
        tx = VersionedTransaction(
            MessageV0.try_compile(keeper.pubkey(), [ix], [], blockhash), [keeper]
        )

        sig = (await client.send_raw_transaction(bytes(tx))).value

        status = (await client.get_signature_statuses([sig])).value[0]
        assert status.err is None
        assert (await client.get_account_info(job)).value is None
        assert (await client.get_balance(payer)).value == payer_before + job_account.lamports


async def test_a_competitor_makes_the_jobs_program_fail_with_3012():
    async with (
        LocalChain.start("demo", auto_advance=False) as chain,
        AsyncClient(chain.url) as client,
    ):
        world = chain.world
        chain.set_faults(competitor_next=1)
        job = world.labels["done_market_gone"]
        payer = Pubkey(chain.ledger.get(job).data[JobOffset.PAYER : JobOffset.PAYER + 32])
        ix = instructions.clean_admin(
            instructions.CleanAdminAccounts(job=job, payer=payer, authority=world.market_admin),
            program_id=world.program_id,
        )
        keeper = world.keypairs["keeper"]
        blockhash = (await client.get_latest_blockhash()).value.blockhash
        tx = VersionedTransaction(
            MessageV0.try_compile(keeper.pubkey(), [ix], [], blockhash), [keeper]
        )

        sig = (await client.send_raw_transaction(bytes(tx), opts=TxOpts(skip_preflight=True))).value

        status = (await client.get_signature_statuses([sig])).value[0]
        assert (status.err.index, status.err.err.code) == (0, ACCOUNT_NOT_INITIALIZED)
