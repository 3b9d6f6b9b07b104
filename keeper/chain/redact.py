"""Redaction of RPC URLs: provider API keys live in query strings, paths and user info."""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import urlsplit, urlunsplit

MASK: Final = "***"

# A path segment that looks like a credential: long and random-looking (QuickNode and
# GetBlock tokens, Alchemy and Ankr keys, Triton UUIDs). Short words ("v2", "solana") stay.
_TOKEN_CHARS: Final = re.compile(r"^[A-Za-z0-9_\-]+$")
_LONG_TOKEN: Final = 24
_MIXED_TOKEN: Final = 12


def _looks_like_key(segment: str) -> bool:
    if not segment or not _TOKEN_CHARS.match(segment):
        return False
    if len(segment) >= _LONG_TOKEN:
        return True
    return len(segment) >= _MIXED_TOKEN and any(ch.isdigit() for ch in segment)


def redact_url(url: str) -> str:
    """``url`` safe to log: no user info, query, fragment or key-like path segments."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<unparseable url>"
    netloc = host if port is None else f"{host}:{port}"
    if parts.username or parts.password:
        netloc = f"{MASK}@{netloc}"
    path = "/".join(MASK if _looks_like_key(s) else s for s in parts.path.split("/"))
    query = MASK if parts.query else ""
    return urlunsplit((parts.scheme, netloc, path, query, ""))
