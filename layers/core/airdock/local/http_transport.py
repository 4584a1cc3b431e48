"""The local endpoint's HTTP transport under uvicorn: bounds on what a request may send (its head
and body), and one send() per answer."""
from __future__ import annotations

import asyncio
import json
from typing import Any

# API Gateway refuses payloads above 10 MB and Lambda above 6 MB; MWAA requests are tiny.
MAX_BODY_BYTES = 6 * 1024 * 1024


# Request line + headers. API Gateway allows 10 KiB; this is looser so a legitimate UntagResource
# with 50 long Unicode tag keys (percent-encoded in the query) still fits.
MAX_HEAD_BYTES = 128 * 1024


def bounded_http_protocol() -> type:
    """uvicorn's httptools protocol with a cap on the request head.

    httptools buffers a header until it is complete and uvicorn sets no limit, so one endless
    header would grow the process without bound. Bytes received while the head is incomplete are
    counted; past MAX_HEAD_BYTES the connection gets 431 and is closed (memory stays within the
    cap plus one read)."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class BoundedHttpToolsProtocol(HttpToolsProtocol):  # type: ignore[misc]
        _in_head = True
        _head_bytes = 0  # bytes received while the head is incomplete (bounds memory)

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(OneSendPerAnswer(transport))

        def on_response_complete(self) -> None:
            self.transport.flush()  # the OneSendPerAnswer connection_made put in place
            super().on_response_complete()

        def data_received(self, data: bytes) -> None:
            if self._in_head:
                if self._head_bytes > MAX_HEAD_BYTES:
                    self._refuse_head()
                    return
                self._head_bytes += len(data)
            super().data_received(data)

        def on_headers_complete(self) -> None:
            self._in_head = False
            # A head that arrived in few large reads passes the memory check above; its exact
            # size (the URL and the headers uvicorn collected) goes to the app, which answers
            # 431 before touching the request.
            size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
            self.scope["airdock.head_bytes"] = size  # type: ignore[typeddict-unknown-key]
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._in_head, self._head_bytes = True, 0

        def _refuse_head(self) -> None:
            message = f"Request line and headers exceed {MAX_HEAD_BYTES} bytes."
            body = json.dumps({"message": message, "Message": message}).encode()
            self.transport.write(
                b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
                b"x-amzn-errortype: ValidationException\r\nconnection: close\r\n"
                + f"content-length: {len(body)}\r\n\r\n".encode() + body)
            self.transport.close()
            self._in_head, self._head_bytes = False, 0

    return BoundedHttpToolsProtocol


class OneSendPerAnswer:
    """A transport that sends an answer's head and body in a single send().

    uvicorn writes them in two calls. On loopback the first send() wakes the client, which then
    sleeps again until the body arrives. Writes are held until the protocol calls `flush` (its
    answer is complete) or the connection closes, which sends what is pending first, so nothing
    is dropped or reordered. An interim answer (`100 Continue`) goes out at once: the client
    waits for it before sending its body. Everything else (flow control, addresses) is the real
    transport's. About 5 % of the server's CPU per request (interleaved runs of bench/soak.py's
    load on two servers)."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._pending.append(bytes(data))
        if self._pending[-1].startswith(b"HTTP/1.1 1"):
            self.flush()

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(len(data) for data in self._pending)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending.clear()
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


# Path prefixes of the operations that call the environment's Airflow (InvokeRestApi).
