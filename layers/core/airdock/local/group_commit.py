"""Group commit for the local endpoint: a write is acknowledged only once it is on disk, and one
fsync makes all the writes of a turn of the event loop durable.

`airdock serve` opens `state.db` with `synchronous=NORMAL`: in WAL mode a commit then appends to
the WAL without an fsync. `GroupCommit.write` runs the writes that arrived in one turn after the
turn's reads, then fsyncs the WAL once, then answers them. What a client was told succeeded
therefore survives a power loss, exactly as with `synchronous=FULL`, at one fsync per turn
instead of one per commit, which held the loop ~27 % of its time in bench/soak.py.

The fsync runs on the event loop itself: on a worker thread it needs the GIL back from the busy
loop twice per fsync, and measured no better for reads and slower for writes.

Writes nobody acknowledges (a workflow's progress, metrics) are made durable by the next fsync or
checkpoint. A power loss can lose a suffix of those; WAL replays transactions in order, so the
state after it is one the process went through, which is what restart recovery already handles
after a SIGKILL.
"""
from __future__ import annotations

import asyncio
from typing import Any, Callable, TypeVar

T = TypeVar("T")


class GroupCommit:
    def __init__(self, sync: Callable[[], None]) -> None:
        self._sync = sync
        self._pending: list[tuple[Callable[[], Any], asyncio.Future[Any]]] = []

    async def write(self, work: Callable[[], T]) -> T:
        """Run `work` (which commits to the store) with the writes of this turn of the event
        loop, after its reads, and return its result once the fsync that follows has made it
        durable (raises OSError if the fsync failed).

        Reads go first because a write is answered after the fsync at the end of the turn in any
        case: handled before the reads, it would only have delayed them."""
        loop = asyncio.get_running_loop()
        if not self._pending:
            # call_soon queues the group behind the requests this turn already started.
            loop.call_soon(self._flush)
        done: asyncio.Future[T] = loop.create_future()
        self._pending.append((work, done))
        return await done

    def _flush(self) -> None:
        group, self._pending = self._pending, []
        results: list[tuple[asyncio.Future[Any], Any]] = []
        for work, done in group:
            try:
                results.append((done, work()))
            except Exception as exc:  # that write's failure is its caller's alone
                if not done.done():
                    done.set_exception(exc)
        try:
            self._sync()
        except OSError as exc:
            for done, _ in results:
                if not done.done():  # a cancelled waiter (client gone) needs no answer
                    done.set_exception(exc)
            return
        for done, result in results:
            if not done.done():
                done.set_result(result)
