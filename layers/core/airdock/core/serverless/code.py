"""Rules for a workflow's `Code` object: a `.py`, a `.sh` or a `.zip` unpacked at the root of the
tasks' working folder, at most 250 MB packed and unpacked, with no entry leaving that folder."""
from __future__ import annotations

import posixpath
from collections.abc import Iterable

MAX_CODE_BYTES = 250 * 1024 * 1024
CODE_SUFFIXES = (".py", ".sh", ".zip")


class CodeError(ValueError):
    pass


def check_code_name(key: str) -> str:
    """The kind of code object (`py`, `sh` or `zip`) by its key."""
    for suffix in CODE_SUFFIXES:
        if key.lower().endswith(suffix):
            return suffix[1:]
    raise CodeError(f"{key} is not a .py, .sh or .zip file")


def check_size(size: int, key: str) -> None:
    if size > MAX_CODE_BYTES:
        raise CodeError(f"{key} is {size} bytes; at most {MAX_CODE_BYTES} are allowed")


def check_zip_entries(entries: Iterable[tuple[str, int]], key: str) -> None:
    """Entries (name, unpacked size) of a code .zip: none may leave the folder it is unpacked in,
    and all together must fit the size limit."""
    total = 0
    bad: list[str] = []
    for name, size in entries:
        normal = posixpath.normpath(name.replace("\\", "/"))
        if name.startswith(("/", "\\")) or normal == ".." or normal.startswith("../") or ":" in name.split("/")[0]:
            bad.append(name)
        total += size
    if bad:
        raise CodeError(f"{key} has entries that would unpack outside its folder: {', '.join(sorted(bad)[:5])}")
    if total > MAX_CODE_BYTES:
        raise CodeError(f"{key} unpacks to {total} bytes; at most {MAX_CODE_BYTES} are allowed")
