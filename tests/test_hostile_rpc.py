"""The hostile RPC fixture does what it says: a test of the tool the fault tests rely on."""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator

import httpx
import pytest

from keeper.localnet.chain import LocalChain
from tests.hostile_rpc import (
    CLOCK_SYSVAR,
    HostileRpc,
    Rule,
    clock_ahead,
    confirmed_statuses,
    duplicate_first_account,
    hide_accounts,
    null_result,
    truncate_data,
)


@pytest.fixture
def proxied() -> Iterator[tuple[LocalChain, HostileRpc]]:
    with (
        LocalChain.run_in_thread("demo", port=0, auto_advance=False) as chain,
        HostileRpc.run_in_thread(chain.url) as proxy,
    ):
        yield chain, proxy


def _call(url: str, method: str, *params: object, timeout: float = 10) -> httpx.Response:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    return httpx.post(url, json=body, timeout=timeout)


def _programs(chain: LocalChain) -> list[str]:
    return [str(chain.world.program_id), {"encoding": "base64"}]  # type: ignore[list-item]


def _clock_now(answer: httpx.Response) -> int:
    data = base64.b64decode(answer.json()["result"]["value"]["data"][0])
    (now,) = struct.unpack_from("<q", data, 32)
    return int(now)


def test_passes_answers_through_and_records_calls(proxied) -> None:
    chain, proxy = proxied
    direct = _call(chain.url, "getProgramAccounts", *_programs(chain)).json()
    through = _call(proxy.url, "getProgramAccounts", *_programs(chain)).json()
    assert through["result"] == direct["result"]
    assert proxy.methods_called() == ["getProgramAccounts"]


def test_hides_an_account_everywhere(proxied) -> None:
    chain, proxy = proxied
    accounts = _call(chain.url, "getProgramAccounts", *_programs(chain)).json()["result"]
    victim = accounts[0]["pubkey"]
    proxy.set_rules(Rule(rewrite=hide_accounts(victim)))
    seen = _call(proxy.url, "getProgramAccounts", *_programs(chain)).json()["result"]
    assert victim not in {item["pubkey"] for item in seen}
    assert len(seen) == len(accounts) - 1
    many = _call(proxy.url, "getMultipleAccounts", [victim], {"encoding": "base64"}).json()
    assert many["result"]["value"] == [None]
    one = _call(proxy.url, "getAccountInfo", victim, {"encoding": "base64"}).json()
    assert one["result"]["value"] is None


def test_duplicates_and_truncates_scans(proxied) -> None:
    chain, proxy = proxied
    accounts = _call(chain.url, "getProgramAccounts", *_programs(chain)).json()["result"]
    proxy.set_rules(Rule(method="getProgramAccounts", rewrite=duplicate_first_account()))
    doubled = _call(proxy.url, "getProgramAccounts", *_programs(chain)).json()["result"]
    assert len(doubled) == len(accounts) + 1
    assert doubled[0] == doubled[1]
    proxy.set_rules(Rule(method="getProgramAccounts", rewrite=truncate_data(7)))
    short = _call(proxy.url, "getProgramAccounts", *_programs(chain)).json()["result"]
    assert {len(base64.b64decode(item["account"]["data"][0])) for item in short} == {7}


def test_moves_the_clock_ahead(proxied) -> None:
    chain, proxy = proxied
    real = _clock_now(_call(chain.url, "getAccountInfo", CLOCK_SYSVAR, {"encoding": "base64"}))
    proxy.set_rules(Rule(rewrite=clock_ahead(30 * 86_400)))
    lied = _clock_now(_call(proxy.url, "getAccountInfo", CLOCK_SYSVAR, {"encoding": "base64"}))
    assert lied - real == 30 * 86_400


def test_fails_statuses_errors_and_uses_up(proxied) -> None:
    chain, proxy = proxied
    proxy.set_rules(
        Rule(method="getHealth", status=501, times=1),
        Rule(method="getHealth", error={"code": -32603, "message": "boom"}, times=1),
    )
    assert _call(proxy.url, "getHealth").status_code == 501
    assert _call(proxy.url, "getHealth").json()["error"]["message"] == "boom"
    assert _call(proxy.url, "getHealth").json()["result"] == "ok"
    proxy.set_rules(Rule(method="getSignatureStatuses", rewrite=null_result()))
    sig = "1" * 64
    statuses = _call(proxy.url, "getSignatureStatuses", [sig]).json()
    assert statuses["result"]["value"] == [None]
    assert chain.url != proxy.url


def test_fakes_confirmed_statuses_for_what_never_landed(proxied) -> None:
    _chain, proxy = proxied
    proxy.set_rules(Rule(method="getSignatureStatuses", rewrite=confirmed_statuses()))
    statuses = _call(proxy.url, "getSignatureStatuses", ["1" * 64]).json()
    (status,) = statuses["result"]["value"]
    assert status["confirmationStatus"] == "confirmed"
    assert status["err"] is None


def test_trickles_a_body(proxied) -> None:
    _chain, proxy = proxied
    proxy.set_rules(Rule(method="getHealth", trickle_every_s=0.2))
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            proxy.url,
            json={"jsonrpc": "2.0", "id": 1, "method": "getHealth"},
            timeout=httpx.Timeout(5, read=0.1),
        )
