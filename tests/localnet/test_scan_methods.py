"""getProgramAccountsV2 (pages, changedSinceSlot) and the node's count of its own work."""

from __future__ import annotations

import base64

import based58
import httpx
import pytest

from keeper.localnet.chain import LocalChain
from keeper.program.layouts import JOB_DISCRIMINATOR, MARKET_DISCRIMINATOR, JobOffset

JOBS, MARKETS = 2_500, 5


@pytest.fixture(scope="module")
def scale_chain():
    with LocalChain.run_in_thread(
        "scale", jobs=JOBS, markets=MARKETS, due_fraction=0.5, auto_advance=False
    ) as chain:
        yield chain


@pytest.fixture
def chain(scale_chain):
    rpc(scale_chain, "localnet_resetStats")
    return scale_chain


def rpc(chain, method: str, *params: object) -> dict:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    answer = httpx.post(chain.url, json=body, timeout=60).json()
    assert "result" in answer, answer
    return answer["result"]


def memcmp(offset: int, value: bytes) -> dict:
    return {"memcmp": {"offset": offset, "bytes": based58.b58encode(value).decode()}}


def program(chain) -> str:
    return str(chain.world.program_id)


def page_through(chain, config: dict) -> tuple[list[dict], list[dict]]:
    """Every account of every page, and the pages (until paginationKey is null)."""
    accounts, pages, key = [], [], None
    while True:
        page = rpc(chain, "getProgramAccountsV2", program(chain), {**config, "paginationKey": key})
        pages.append(page)
        accounts.extend(page["accounts"])
        key = page["paginationKey"]
        if key is None:
            return accounts, pages


def program_account_count(chain) -> int:
    """How many accounts the program has now (tests may have posted jobs meanwhile)."""
    no_data = {"dataSlice": {"offset": 0, "length": 0}}
    return len(rpc(chain, "getProgramAccounts", program(chain), no_data))


def keys(accounts: list[dict]) -> set[str]:
    return {account["pubkey"] for account in accounts}


# -- getProgramAccountsV2 -----------------------------------------------------------------


def test_v2_pages_to_the_end_and_matches_the_standard_scan(chain):
    standard = rpc(chain, "getProgramAccounts", program(chain), {"encoding": "base64"})

    accounts, pages = page_through(chain, {"encoding": "base64", "limit": 1_000})

    assert len(accounts) == len(standard) >= JOBS + MARKETS
    assert keys(accounts) == keys(standard)
    assert len(pages) == 3
    assert sorted(accounts, key=lambda a: a["pubkey"]) == sorted(
        standard, key=lambda a: a["pubkey"]
    )


def test_v2_a_short_page_is_not_the_end(chain):
    market = chain.world.labels["market_0"]
    only_market_0 = [memcmp(0, JOB_DISCRIMINATOR), memcmp(JobOffset.MARKET, bytes(market))]
    standard = rpc(
        chain,
        "getProgramAccounts",
        program(chain),
        {"encoding": "base64", "filters": only_market_0},
    )

    accounts, pages = page_through(
        chain, {"encoding": "base64", "filters": only_market_0, "limit": 300}
    )

    assert keys(accounts) == keys(standard)
    assert 0 < len(standard) < JOBS
    short_but_not_last = [p for p in pages[:-1] if len(p["accounts"]) < 300]
    assert short_but_not_last  # filtered pages come back short, with a key to go on
    assert all(p["paginationKey"] is not None for p in pages[:-1])


def test_v2_a_filter_matching_nothing_still_pages_to_the_end(chain):
    nothing = [memcmp(0, b"\xff" * 8)]
    accounts, pages = page_through(chain, {"filters": nothing, "limit": 1_000})

    assert accounts == []
    assert len(pages) == 3  # empty pages, each with a key, then the last with null


def test_v2_changed_since_slot_returns_only_changed_accounts(chain):
    rpc(chain, "localnet_advanceSlots", 5)
    since = rpc(chain, "getSlot")
    market = chain.world.labels["market_1"]
    posted = rpc(chain, "localnet_postJob", str(market))

    accounts, _ = page_through(chain, {"changedSinceSlot": since, "limit": 10_000})

    assert keys(accounts) == {posted["job"], str(market)}  # the job, and the queue it joined
    later, _ = page_through(chain, {"changedSinceSlot": since + 1, "limit": 10_000})
    assert later == []


def test_v2_with_context_and_data_slice(chain):
    page = rpc(
        chain,
        "getProgramAccountsV2",
        program(chain),
        {"withContext": True, "limit": 2, "dataSlice": {"offset": 0, "length": 8}},
    )

    assert set(page) == {"context", "accounts", "paginationKey"}
    assert page["context"]["slot"] == rpc(chain, "getSlot")
    assert len(page["accounts"]) == 2
    sliced = {base64.b64decode(a["account"]["data"][0]) for a in page["accounts"]}
    assert sliced <= {JOB_DISCRIMINATOR, MARKET_DISCRIMINATOR}
    assert {a["account"]["space"] for a in page["accounts"]} <= {240, 10_224}


@pytest.mark.parametrize(
    "config",
    [
        {"limit": 0},
        {"limit": 10_001},
        {"paginationKey": "not base58 0OIl"},
        {"changedSinceSlot": -1},
    ],
    ids=["limit-0", "limit-too-big", "bad-key", "negative-slot"],
)
def test_v2_rejects_bad_params(chain, config):
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "getProgramAccountsV2",
        "params": [program(chain), config],
    }
    answer = httpx.post(chain.url, json=body).json()

    assert answer["error"]["code"] == -32602


# -- the node's work ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "filters",
    [
        [],
        [{"dataSize": 240}],
        [memcmp(0, MARKET_DISCRIMINATOR)],
        [memcmp(0, b"\xff" * 8)],
    ],
    ids=["none", "dataSize", "markets-only", "nothing-matches"],
)
def test_get_program_accounts_visits_every_program_account_whatever_the_filter(chain, filters):
    every = program_account_count(chain)
    rpc(chain, "localnet_resetStats")

    for _ in range(2):
        rpc(chain, "getProgramAccounts", program(chain), {"filters": filters})
    stats = rpc(chain, "localnet_getStats")

    assert every >= JOBS + MARKETS
    assert stats["accountsVisited"] == {"getProgramAccounts": 2 * every}
    assert stats["lastCallAccountsVisited"] == {"getProgramAccounts": every}
    assert stats["calls"] == {"getProgramAccounts": 2}


def test_v2_pages_visit_what_they_walk(chain):
    every = program_account_count(chain)
    rpc(chain, "localnet_resetStats")
    page_through(chain, {"filters": [memcmp(0, MARKET_DISCRIMINATOR)], "limit": 1_000})
    stats = rpc(chain, "localnet_getStats")

    assert stats["accountsVisited"] == {"getProgramAccountsV2": every}
    assert stats["accountsReturned"] == {"getProgramAccountsV2": MARKETS}
    assert stats["calls"] == {"getProgramAccountsV2": 3}


def test_stats_count_calls_and_bytes_but_not_control_calls(chain):
    rpc(chain, "localnet_resetStats")
    rpc(chain, "getSlot")
    rpc(chain, "getSlot")
    rpc(chain, "localnet_getClock")
    body = {"jsonrpc": "2.0", "id": 1, "method": "getProgramAccounts", "params": [program(chain)]}
    size = len(httpx.post(chain.url, json=body, timeout=60).content)

    stats = rpc(chain, "localnet_getStats")

    assert stats["calls"] == {"getSlot": 2, "getProgramAccounts": 1}
    assert stats["httpRequests"] == 3
    assert stats["responseBytes"]["getProgramAccounts"] == size
    reset = rpc(chain, "localnet_resetStats")
    assert reset["calls"] == {}
    assert reset["accountsVisited"] == {}
