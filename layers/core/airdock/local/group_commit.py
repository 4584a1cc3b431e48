"""Group commit for the local endpoint: a write is acknowledged only once it is on disk, and one
fsync makes every write committed meanwhile durable.

`airdock serve` opens `state.db` with `synchronous=NORMAL`: in WAL mode a commit then appends to
the WAL without an fsync. Before a write's response is sent, `durable()` waits for an fsync of
the WAL that runs after the write committed: one per turn of the event loop, after every request
of that turn has been handled, so all the writes of a turn share it. What a client was told
succeeded therefore survives a power loss, exactly as with `synchronous=FULL`, at one fsync per
turn instead of one per commit (bench/soak.py).

The fsync runs on the event loop itself. On a worker thread the loop would not wait for the
disk, but the thread needs the GIL twice per fsync, and the busy loop hands it over only every
switch interval (5 ms): writes waited ~45 ms instead of ~20 ms.

Writes nobody acknowledges (a workflow's progress, metrics) are made durable by the next fsync or
checkpoint. A power loss can lose a suffix of those; WAL replays transactions in order, so the
state after it is one the process went through, which is what restart recovery already handles
after a SIGKILL.
"""
from __future__ import annotations

import asyncio
from typing import Callable


class GroupCommit:
    def __init__(self, sync: Callable[[], None]) -> None:
        self._sync = sync
        self._waiting: list[asyncio.Future[None]] = []

    async def durable(self) -> None:
        """Return once everything committed before this call is on disk (raises OSError if the
        fsync failed)."""
        loop = asyncio.get_running_loop()
        if not self._waiting:
            # call_soon queues the fsync behind the requests this turn already started.
            loop.call_soon(self._flush)
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiting.append(waiter)
        await waiter

    def _flush(self) -> None:
        batch, self._waiting = self._waiting, []
        try:
            self._sync()
        except OSError as exc:
            for waiter in batch:
                if not waiter.done():  # a cancelled waiter (client gone) needs no answer
                    waiter.set_exception(exc)
        else:
            for waiter in batch:
                if not waiter.done():
                    waiter.set_result(None)
