"""Percent-decoding of request paths, cached: clients ask about the same few environments and
ARNs over and over, and urllib's unquote is a pure-Python loop (bench/soak.py)."""
from __future__ import annotations

from functools import lru_cache
from urllib.parse import unquote

# Longer strings are decoded every time, so the caches stay small whatever clients send.
CACHED_LENGTH = 512


@lru_cache(maxsize=4096)
def _decode(text: str) -> str:
    return unquote(text)


def percent_decode(text: str) -> str:
    """unquote(text)."""
    return _decode(text) if len(text) <= CACHED_LENGTH else unquote(text)
