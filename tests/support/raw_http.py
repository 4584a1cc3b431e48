"""Serving raw HTTP bytes to an ASGI app through the protocol `airdock serve` gives uvicorn
(http_transport.bounded_http_protocol), with a transport that records what the event loop would send."""
from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.server import ServerState

from airdock.local.http_transport import bounded_http_protocol


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:  # type: ignore[override]
        self.writes.append(bytes(data))

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8787), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def protocol_for(app: Any, transport: RecordingTransport) -> Any:
    """The protocol `airdock serve` runs, connected to `transport` (call inside an event loop)."""
    config = Config(app=app, http=bounded_http_protocol(), access_log=False, log_level="warning", lifespan="off")
    config.load()
    protocol = config.http_protocol_class(config=config, server_state=ServerState(), app_state={})
    protocol.connection_made(transport)
    return protocol


async def exchange(app: Any, request: bytes, transport: RecordingTransport | None = None) -> RecordingTransport:
    """Feed one raw request to the protocol and wait until the app's response is complete (on
    `transport`, if the caller wants to watch it while the app works)."""
    transport = transport or RecordingTransport()
    protocol = protocol_for(app, transport)
    protocol.data_received(request)
    for _ in range(200):
        await asyncio.sleep(0)
        if protocol.cycle is not None and protocol.cycle.response_complete:
            break
    protocol.connection_lost(None)
    return transport
