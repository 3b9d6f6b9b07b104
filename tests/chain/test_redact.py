"""RPC URLs are logged and put in errors only with their credentials masked."""

from __future__ import annotations

import pytest

from keeper.chain.redact import redact_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.mainnet-beta.solana.com", "https://api.mainnet-beta.solana.com"),
        ("http://127.0.0.1:8899/", "http://127.0.0.1:8899/"),
        (
            "https://mainnet.helius-rpc.com/?api-key=1234-abcd",
            "https://mainnet.helius-rpc.com/?***",
        ),
        (
            "https://solana-mainnet.g.alchemy.com/v2/AbCdEfGhIjKlMnOpQrStUvWxYz012345",
            "https://solana-mainnet.g.alchemy.com/v2/***",
        ),
        (
            "https://example.solana-mainnet.quiknode.pro/0123456789abcdef0123456789abcdef/",
            "https://example.solana-mainnet.quiknode.pro/***/",
        ),
        (
            "https://xyz.rpcpool.com/6f1c2e3a-1b2c-4d5e-8f90-123456789abc",
            "https://xyz.rpcpool.com/***",
        ),
        ("https://rpc.ankr.com/solana/" + "ab" * 32, "https://rpc.ankr.com/solana/***"),
        ("https://user:pass@node.example.com/rpc", "https://***@node.example.com/rpc"),
        ("https://node.example.com/rpc#frag", "https://node.example.com/rpc"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_short_words_in_the_path_stay_readable() -> None:
    assert redact_url("https://node.example.com/solana/v1/mainnet") == (
        "https://node.example.com/solana/v1/mainnet"
    )


def test_an_unparseable_url_is_not_echoed() -> None:
    assert redact_url("http://[not-an-ip/secret") == "<unparseable url>"
