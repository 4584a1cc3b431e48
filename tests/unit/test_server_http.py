"""Specification of how `airdock serve` puts responses on the wire: the HTTP protocol it gives
uvicorn (server.bounded_http_protocol) driven with raw bytes, and a transport that records what
the event loop would send."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest
from support.raw_http import exchange


GET = b"GET /environments HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


@pytest.mark.parametrize("declared", [None, b"999"], ids=["no-length", "wrong-length"])
def test_api_responses_carry_their_exact_length_instead_of_chunked_encoding(declared: bytes | None) -> None:
    # Given an API function's proxy response, with or without a Content-Length of its own
    from airdock.local.server import _send_proxy_response

    headers = {"Content-Type": "application/json", **({"Content-Length": declared.decode()} if declared else {})}
    response = {"statusCode": 200, "headers": headers, "body": '{"Environments": ["é"]}'}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await _send_proxy_response(send, response)

    # When it is served
    transport = asyncio.run(exchange(app, GET))
    # Then the head names the UTF-8 length of the body once, and the body is not chunked
    head, body = b"".join(transport.writes).split(b"\r\n\r\n", 1)
    lines = head.lower().split(b"\r\n")
    assert [line for line in lines if line.startswith(b"content-length")] == [b"content-length: 24"]
    assert b"transfer-encoding: chunked" not in lines
    assert body == '{"Environments": ["é"]}'.encode()


def test_request_ids_are_distinct_version_4_uuids() -> None:
    # Given many request ids drawn as the endpoint draws them (no system call per request)
    import uuid

    from airdock.local.server import _request_id

    ids = [_request_id() for _ in range(10_000)]
    # Then each is a canonical version-4 UUID and none repeats
    assert all(str(uuid.UUID(value)) == value and uuid.UUID(value).version == 4 for value in ids)
    assert len(set(ids)) == len(ids)
