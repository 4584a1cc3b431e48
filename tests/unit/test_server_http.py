"""Specification of how `airdock serve` puts responses on the wire: the HTTP protocol it gives
uvicorn (http_transport.bounded_http_protocol) driven with raw bytes, and a transport that records what
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
    from airdock.local.apigw_events import send_proxy_response as _send_proxy_response

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

    from airdock.local.apigw_events import request_id as _request_id

    ids = [_request_id() for _ in range(10_000)]
    # Then each is a canonical version-4 UUID and none repeats
    assert all(str(uuid.UUID(value)) == value and uuid.UUID(value).version == 4 for value in ids)
    assert len(set(ids)) == len(ids)


async def _answer_after_reading(scope: dict[str, Any], receive: Any, send: Any) -> None:
    from airdock.local.apigw_events import send_json as _send_json

    message = await receive()
    await _send_json(send, 200, {"received": message.get("body", b"").decode()})


def test_an_answer_leaves_in_one_write_head_and_body_together() -> None:
    # Given an app that answers with a head and then a body (two ASGI sends)
    # When a request is served
    transport = asyncio.run(exchange(_answer_after_reading, GET))
    # Then the transport got a single write holding the whole answer (one send() on the socket)
    assert len(transport.writes) == 1
    head, body = transport.writes[0].split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 OK") and body == b'{"received": ""}'


def test_a_100_continue_goes_out_before_the_app_has_answered() -> None:
    # Given a request that asks for 100 Continue before its body
    request = (b"PUT /environments/x HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\n"
               b"Content-Length: 2\r\n\r\n{}")
    # When it is served
    transport = asyncio.run(exchange(_answer_after_reading, request))
    # Then the interim answer was written on its own, first, and the final answer after it
    assert transport.writes[0] == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert len(transport.writes) == 2 and transport.writes[1].startswith(b"HTTP/1.1 200 OK")
    assert transport.writes[1].endswith(b'{"received": "{}"}')


def test_what_is_written_before_the_connection_closes_is_sent_first() -> None:
    # Given a head so large that the protocol refuses it (a write, then a close, outside any answer)
    from airdock.local.http_transport import MAX_HEAD_BYTES

    request = b"GET / HTTP/1.1\r\nX-Big: " + b"a" * (MAX_HEAD_BYTES + 10)
    # When the head arrives in two reads (the second one is refused)
    async def serve() -> Any:
        from support.raw_http import RecordingTransport, protocol_for

        transport = RecordingTransport()
        protocol = protocol_for(_answer_after_reading, transport)
        protocol.data_received(request[: MAX_HEAD_BYTES + 5])
        protocol.data_received(request[MAX_HEAD_BYTES + 5:])
        return transport

    transport = asyncio.run(serve())
    # Then the 431 answer reached the transport before it closed
    assert transport.closed
    assert b"".join(transport.writes).startswith(b"HTTP/1.1 431 ")
