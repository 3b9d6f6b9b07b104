"""Redaction of RPC URLs: provider API keys live in query strings, paths and user info."""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import urlsplit, urlunsplit

MASK: Final = "***"

# Path segments are kept only when they are plain words: an API version (``v1``, ``v2``)
# or short lowercase words joined by hyphens (``solana``, ``rpc``, ``mainnet-beta``).
# Everything else — anything with a digit, a capital, another symbol or a percent escape,
# and letter runs longer than a word — is masked, however short: a key of 8 characters
# (``abcd1234``) is as secret as one of 64. Masking a harmless segment costs nothing.
_PLAIN_WORD: Final = re.compile(r"^(?:v[0-9]{1,2}|[a-z]{1,15}(?:-[a-z]{1,15})*)$")
_MAX_WORD: Final = 32


def is_plain_word(segment: str) -> bool:
    """A path segment safe to show: empty, an API version or short lowercase words."""
    return not segment or (len(segment) <= _MAX_WORD and bool(_PLAIN_WORD.match(segment)))


def redact_url(url: str) -> str:
    """``url`` safe to log: no user info, query or fragment, and no path segment but plain
    words (see ``is_plain_word``)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<unparseable url>"
    netloc = host if port is None else f"{host}:{port}"
    if parts.username or parts.password:
        netloc = f"{MASK}@{netloc}"
    path = "/".join(s if is_plain_word(s) else MASK for s in parts.path.split("/"))
    query = MASK if parts.query else ""
    return urlunsplit((parts.scheme, netloc, path, query, ""))
