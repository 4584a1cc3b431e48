"""Specification of percent-decoding request paths (core/paths.py) and of target_of's cache."""
from __future__ import annotations

from urllib.parse import quote, unquote

from airdock.core import paths
from airdock.core.authorization import Target, target_of

ARN = "arn:aws:airflow:us-east-1:000000000000:environment/my-env"


def test_percent_decode_is_unquote_for_short_and_long_text() -> None:
    # Given text with escapes, invalid escapes, UTF-8 and plain characters, short and long
    samples = [quote(ARN, safe=""), "%zz%2", "caf%C3%A9", "plain", "%" * 3, quote("é/" * 400, safe="")]
    # Then decoding gives exactly what unquote gives, cached or not
    assert [paths.percent_decode(s) for s in samples] == [unquote(s) for s in samples]
    assert len(samples[-1]) > paths.CACHED_LENGTH


def test_long_text_is_never_kept_in_the_cache() -> None:
    # Given a cache holding nothing yet
    paths._decode.cache_clear()
    # When text longer than the cached length is decoded, and then short text
    paths.percent_decode("%41" * paths.CACHED_LENGTH)
    paths.percent_decode("%41")
    # Then only the short text was cached: what clients send cannot grow memory past the cache
    assert paths._decode.cache_info().currsize == 1


def test_target_of_answers_the_same_whether_cached_or_not() -> None:
    # Given a tag path for an ARN, asked twice, and an over-long environment name
    path = "/tags/" + quote(ARN, safe="")
    long_name = "n" * (paths.CACHED_LENGTH + 1)
    # Then both answers name the resource, and the long path is resolved without the cache
    assert target_of("GET", path) == target_of("get", path) == Target("ListTagsForResource", None, ARN)
    assert target_of("GET", f"/environments/{long_name}") == Target("GetEnvironment", long_name, None)
