"""The job-lifecycle control methods: the accounts a real transaction would write, heard
by subscribers as a real transaction would be (per slot; no programNotification for a close).
"""

from __future__ import annotations

import base64

import httpx
import pytest
from solders.pubkey import Pubkey
from ws_client import connect

from keeper.localnet.chain import LocalChain
from keeper.localnet.system_program import SYSTEM_PROGRAM
from keeper.program.layouts import decode_job, decode_market, decode_run
from keeper.program.state import JobState, QueueType


@pytest.fixture
async def demo():
    async with LocalChain.start("demo", auto_advance=False) as chain:
        yield chain


async def control(chain, method: str, *params: object) -> dict:
    async with httpx.AsyncClient() as http:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
        return (await http.post(chain.url, json=body)).json()


async def step(chain, method: str, *params: object) -> dict:
    answer = await control(chain, method, *params)
    assert "result" in answer, answer
    return answer["result"]


def job_of(chain, key: str):
    account = chain.get_account(Pubkey.from_string(key))
    assert account is not None
    return decode_job(account.data)


def market_of(chain, key: Pubkey):
    account = chain.get_account(key)
    assert account is not None
    return decode_market(account.data)


async def test_a_job_is_posted_started_and_finished(demo):
    market = demo.world.labels["market_gated"]
    posted = await step(demo, "localnet_postJob", str(market), {"timeout": 7_200})
    job = job_of(demo, posted["job"])
    assert (job.state, job.market, job.timeout) == (JobState.QUEUED, market, 7_200)
    assert posted["slot"] == demo.slot
    assert Pubkey.from_string(posted["job"]) in market_of(demo, market).queue

    started = await step(demo, "localnet_startJob", posted["job"])
    run_key = Pubkey.from_string(started["run"])
    run = decode_run(demo.get_account(run_key).data)
    assert (run.job, run.time) == (Pubkey.from_string(posted["job"]), demo.unix_timestamp)
    assert market_of(demo, market).queue == ()
    assert market_of(demo, market).queue_type == QueueType.EMPTY

    demo.advance_slots(100)
    finished = await step(demo, "localnet_finishJob", posted["job"])
    done = job_of(demo, posted["job"])
    assert finished["run"] == started["run"]
    assert finished["timeEnd"] == done.time_end == demo.unix_timestamp
    assert (done.state, done.time_start, done.node) == (JobState.DONE, run.time, run.node)
    assert demo.get_account(run_key) is None
    assert demo.ledger.balance(run.payer) > 0  # the run's rent went back to its payer


async def test_a_stop_closes_the_run_and_leaves_the_job_stopped(demo):
    market = demo.world.labels["market_open"]
    posted = await step(demo, "localnet_postJob", str(market))
    started = await step(demo, "localnet_startJob", posted["job"])

    stopped = await step(demo, "localnet_stopJob", posted["job"])

    assert stopped["run"] == started["run"]
    assert job_of(demo, posted["job"]).state == JobState.STOPPED
    assert demo.get_account(Pubkey.from_string(started["run"])) is None
    # The demo's own queued job stays in the queue; the posted one left it when it started.
    assert market_of(demo, market).queue == (demo.world.labels["queued_in_queue"],)


async def test_a_market_closes(demo):
    market = demo.world.labels["market_high_stake"]

    assert (await step(demo, "localnet_closeMarket", str(market)))["market"] == str(market)
    assert demo.get_account(market) is None


@pytest.mark.parametrize(
    ("method", "target", "reason"),
    [
        ("localnet_finishJob", "market_open", "not a JobAccount"),
        ("localnet_startJob", "done_not_expired", "not Queued"),
        ("localnet_startJob", "job_running", "already has a run"),
        ("localnet_stopJob", "stopped_open", "has no run"),
        ("localnet_closeMarket", "market_gone", "no MarketAccount"),
        ("localnet_postJob", "done_not_expired", "not a MarketAccount"),
        ("localnet_finishJob", "legacy_done_expired", "legacy layout"),
    ],
)
async def test_a_step_that_does_not_fit_is_an_invalid_params_error(demo, method, target, reason):
    answer = await control(demo, method, str(demo.world.labels[target]))

    assert answer["error"]["code"] == -32602
    assert reason in answer["error"]["message"]


async def test_subscribers_hear_the_life_of_a_job_as_from_transactions(demo):
    program = str(demo.world.program_id)
    market = demo.world.labels["market_open"]
    async with connect(demo.ws_url) as ws:
        program_sub = await ws.subscribe("programSubscribe", [program, {"encoding": "base64"}])
        await ws.subscribe("slotSubscribe")

        posted = await step(demo, "localnet_postJob", str(market))
        demo.advance_slots(1)
        heard = await ws.until_slot(posted["slot"])
        assert {m["params"]["result"]["value"]["pubkey"] for m in heard} == {
            posted["job"],
            str(market),
        }

        started = await step(demo, "localnet_startJob", posted["job"])
        run_sub = await ws.subscribe("accountSubscribe", [started["run"], {"encoding": "base64"}])
        demo.advance_slots(1)
        heard = await ws.until_slot(started["slot"])
        created = [m for m in heard if m["params"]["subscription"] == program_sub]
        assert started["run"] in {m["params"]["result"]["value"]["pubkey"] for m in created}

        finished = await step(demo, "localnet_finishJob", posted["job"])
        demo.advance_slots(1)
        heard = await ws.until_slot(finished["slot"])

    by_sub: dict[int, list[dict]] = {}
    for message in heard:
        by_sub.setdefault(message["params"]["subscription"], []).append(message)
    program_keys = [m["params"]["result"]["value"]["pubkey"] for m in by_sub[program_sub]]
    assert posted["job"] in program_keys
    assert started["run"] not in program_keys  # a close is never a programNotification
    [done] = [
        m for m in by_sub[program_sub] if m["params"]["result"]["value"]["pubkey"] == posted["job"]
    ]
    data = base64.b64decode(done["params"]["result"]["value"]["account"]["data"][0])
    assert decode_job(data).state == JobState.DONE
    [closed] = by_sub[run_sub]
    assert closed["params"]["result"]["value"]["lamports"] == 0
    assert closed["params"]["result"]["value"]["owner"] == str(SYSTEM_PROGRAM)


async def test_a_market_close_is_heard_by_account_subscribers_only(demo):
    market = demo.world.labels["market_gated"]
    async with connect(demo.ws_url) as ws:
        program_sub = await ws.subscribe(
            "programSubscribe", [str(demo.world.program_id), {"encoding": "base64"}]
        )
        market_sub = await ws.subscribe("accountSubscribe", [str(market)])
        await ws.subscribe("slotSubscribe")

        closed = await step(demo, "localnet_closeMarket", str(market))
        demo.advance_slots(1)
        heard = await ws.until_slot(closed["slot"])

    subs = [m["params"]["subscription"] for m in heard]
    assert market_sub in subs
    assert program_sub not in subs
