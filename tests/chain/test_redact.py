"""RPC URLs are logged and put in errors only with their credentials masked."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keeper.chain.redact import MASK, is_plain_word, redact_url


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
        # Short keys are keys too.
        ("https://x.helius-rpc.com/?api-key=abc123", "https://x.helius-rpc.com/?***"),
        (
            "https://solana-mainnet.g.alchemy.com/v2/abc123def",
            "https://solana-mainnet.g.alchemy.com/v2/***",
        ),
        ("https://rpc.ankr.com/solana/abcd1234", "https://rpc.ankr.com/solana/***"),
        ("https://node.example.com/k/Ab3", "https://node.example.com/k/***"),
        ("https://node.example.com/rpc", "https://node.example.com/rpc"),
        ("https://node.example.com/solana", "https://node.example.com/solana"),
        ("https://node.example.com/mainnet-beta/", "https://node.example.com/mainnet-beta/"),
        ("https://node.example.com/%61%62", "https://node.example.com/***"),
        ("https://node.example.com/SECRET", "https://node.example.com/***"),
        ("https://node.example.com/" + "a" * 20, "https://node.example.com/***"),
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


# Characters a provider's key is made of (and a few more a path may carry).
_KEY_CHARS = string.ascii_letters + string.digits + "-_.~%"
segments = st.text(alphabet=_KEY_CHARS, min_size=1, max_size=80)


@given(path=st.lists(segments, min_size=1, max_size=5))
def test_every_segment_is_kept_as_a_plain_word_or_masked(path: list[str]) -> None:
    redacted = redact_url("https://node.example.com/" + "/".join(path))
    shown = redacted.removeprefix("https://node.example.com/").split("/")
    assert len(shown) == len(path)
    for before, after in zip(path, shown, strict=True):
        assert after == (before if is_plain_word(before) else MASK)


@given(secret=segments.filter(lambda s: any(not c.islower() for c in s.replace("-", ""))))
def test_a_segment_with_anything_but_lowercase_letters_is_never_shown(secret: str) -> None:
    if secret.startswith("v") and secret[1:].isdigit() and len(secret) <= 3:
        return  # an API version such as v2 is a plain word
    redacted = redact_url(f"https://node.example.com/rpc/{secret}/x")
    assert secret not in redacted.split("/")


@given(word=st.from_regex(r"[a-z]{1,15}(-[a-z]{1,15}){0,1}", fullmatch=True))
def test_plain_words_stay_readable(word: str) -> None:
    assert redact_url(f"https://node.example.com/{word}") == f"https://node.example.com/{word}"
