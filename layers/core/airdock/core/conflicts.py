"""Optimistic concurrency: a record is read, changed and written back only if nobody wrote it
meanwhile (the repositories' conditional writes raise ConcurrentModification otherwise).

A lost race is usually an unrelated write (progress text, tags, a health check) and the change
applies as well to the fresh record, so it is started again from a new read. Never forever: a
record that keeps changing under a writer ends in a clear error instead of a spinning thread.
"""
from __future__ import annotations

import logging
from typing import Callable, TypeVar

from airdock.core.errors import ConcurrentModification, ServiceUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

ATTEMPTS = 8


def retry_on_conflict(attempt: Callable[[], T], *, what: str, attempts: int = ATTEMPTS) -> T:
    """`attempt()` reads, changes and conditionally writes; run it again each time it loses a
    race (ConcurrentModification), at most `attempts` times in all. Any other error ends it at
    once. After the last lost race: ServiceUnavailable naming `what`."""
    for _ in range(attempts):
        try:
            return attempt()
        except ConcurrentModification:
            continue
    log.warning("%s: gave up after %d writes lost to concurrent changes", what, attempts)
    raise ServiceUnavailable(f"{what} kept changing while this change was written ({attempts} attempts); try again.")
