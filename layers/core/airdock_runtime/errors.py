"""How the entrypoint's parts report: one prefix on stderr, one error type the entrypoint turns
into its exit code."""
from __future__ import annotations

import sys


class EntrypointError(Exception):
    """A failure the user can fix; its message says what."""


def log(msg: str) -> None:
    print(f"[airdock-entrypoint] {msg}", file=sys.stderr, flush=True)
