"""Find the processes that belong to an environment (or to a whole data directory); stop a test's
child process."""
from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any

from airdock.local.processes import tagged_pids


def processes_under(path: Path) -> list[int]:
    """Pids tagged with an environment dir below `path`, running with a cwd below it, or naming it
    in their command line (setproctitle can hide one of these, never all three)."""
    root = str(Path(path).resolve())
    found: set[int] = set()
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            args = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = (entry / "environ").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if "pytest" in args:
            continue
        tagged = f"AIRDOCK_SUPERVISOR_TAG={root}" in environ
        if tagged or cwd == root or cwd.startswith(root + "/") or root in args:
            found.add(int(entry.name))
    if Path(path).is_dir() and (Path(path) / "pids").is_dir():
        found.update(tagged_pids(root))
    return sorted(found)


def pss_mb(pids: list[int]) -> float:
    total_kb = 0
    for pid in pids:
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        for row in rollup.splitlines():
            if row.startswith("Pss:"):
                total_kb += int(row.split()[1])
    return total_kb / 1024


def stop_process(proc: "subprocess.Popen[Any]", sig: int = signal.SIGTERM, timeout_s: float = 30) -> None:
    """Ask a test's child process to stop with `sig`; kill it if it has not gone within the timeout."""
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
