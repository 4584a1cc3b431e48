"""Finding and ending the processes of an environment directory through /proc, with or without
the supervisor that started them.

- Each supervised component leads its own session; its pid file (`<env_dir>/pids/<name>.pid`)
  records the leader's pid and kernel start time, so a later server finds what a SIGKILLed one
  left behind (`session_members` also follows children that were re-parented to init) and a
  recycled pid is never mistaken for it.
- Every process also carries an environment tag (`TAG_VAR=<env_dir>`) inherited by all of its
  descendants, which finds those that left their session: `reap_orphans` can then promise that no
  process outlives a deleted environment.
- One-shot helpers (CLI calls, builds) belong to the thread waiting for them, so
  `dies_with_caller` has the kernel kill them when their caller dies.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import time
from collections.abc import Sequence
from pathlib import Path

TAG_VAR = "AIRDOCK_SUPERVISOR_TAG"
PIDS_DIR = "pids"


def dies_with_caller(argv: Sequence[str]) -> list[str]:
    """`argv` run so that the kernel SIGKILLs it if the thread that started it dies (a SIGKILLed
    server included): util-linux's setpriv sets the parent-death signal, which survives its exec.
    A preexec_fn could do the same without the extra exec, but is unsafe in a threaded process."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--", *argv] if setpriv else list(argv)


def tag_for(env_dir: Path) -> str:
    return str(Path(env_dir).resolve())


# ---- /proc ----------------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (which may contain spaces)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def start_time(pid: int) -> str | None:
    """Kernel start time of a pid (clock ticks since boot): tells a live process from a recycled pid."""
    f = _stat_fields(pid)
    return f[19] if f else None


def alive(pid: int) -> bool:
    f = _stat_fields(pid)
    # A zombie has exited; only its parent's wait() is missing.
    return f is not None and f[0] not in ("Z", "X")


def _all_procs() -> dict[int, list[str]]:
    procs: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            f = _stat_fields(int(entry.name))
            if f is not None and f[0] not in ("Z", "X"):
                procs[int(entry.name)] = f
    return procs


def session_members(leader: int, leader_start: str | None = None) -> list[int]:
    """Live processes belonging to the session that `leader` started, plus its descendants.

    The session id outlives the leader, so this finds what a dead component left behind even
    after those processes were re-parented to init. Processes that opened a session of their own
    (PostgreSQL's children do) are still found through the parent chain while the parent lives.
    A process started before the leader cannot belong to it: that guards against pid reuse.
    """
    procs = _all_procs()
    start = int(leader_start) if leader_start and leader_start.isdigit() else None
    found = {pid for pid, f in procs.items()
             if int(f[3]) == leader and (start is None or int(f[19]) >= start)}
    if leader in procs and (start is None or procs[leader][19] == leader_start):
        found.add(leader)
    children: dict[int, list[int]] = {}
    for pid, f in procs.items():
        children.setdefault(int(f[1]), []).append(pid)
    stack = list(found)
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return sorted(found)


def tagged_pids(tag: str) -> list[int]:
    """Pids whose environment carries `AIRDOCK_SUPERVISOR_TAG=<tag>` (inherited by descendants).

    Not sufficient alone: setproctitle (gunicorn, Celery, Airflow) overwrites the memory
    /proc/<pid>/environ shows, which is why sessions are the primary means.
    """
    needle = f"{TAG_VAR}={tag}".encode()
    me = os.getpid()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0") and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


# ---- signals --------------------------------------------------------------------------------


def kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        kill(pid, sig)


def wait_gone(pids: list[int], timeout_s: float) -> list[int]:
    """The pids still alive after up to `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    left = [p for p in pids if alive(p)]
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = [p for p in left if alive(p)]
    return left


def end_session(leader: int, leader_start: str | None, grace_s: float) -> None:
    """SIGTERM whatever is left in `leader`'s session, SIGKILL after `grace_s`."""
    left = session_members(leader, leader_start)
    if not left:
        return
    signal_all(left, signal.SIGTERM)
    signal_all(wait_gone(left, grace_s), signal.SIGKILL)


# ---- pid files ------------------------------------------------------------------------------


def write_pidfile(path: Path, pid: int, leader_start: str | None, argv: Sequence[str], tag: str) -> None:
    """Record a session leader atomically: a reaper never reads half a file."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": pid, "pgid": pid, "start_time": leader_start, "argv": list(argv), "tag": tag}))
    os.replace(tmp, path)


def reap_orphans(env_dir: Path, grace_s: float = 10.0) -> list[int]:
    """Kill every process left behind by a previous supervisor of `env_dir`.

    For after a crash or SIGKILL of the controlling server: children of a dead supervisor keep
    running (they have their own sessions). SIGTERM, then SIGKILL after `grace_s`. Returns the
    pids that were found.
    """
    env_dir = Path(env_dir)
    pids_dir = env_dir / PIDS_DIR
    victims: set[int] = set()
    # Pid files go only once their processes are gone: a reaper cut off half-way (the server
    # stopping while a recovery reaps) must leave the next one something to find.
    read: dict[Path, str] = {}
    if pids_dir.is_dir():
        for pidfile in pids_dir.glob("*.pid"):
            try:
                read[pidfile] = pidfile.read_text()
                info = json.loads(read[pidfile])
                victims.update(session_members(int(info["pid"]), info.get("start_time")))
            except (OSError, ValueError, KeyError):
                pass
    victims.update(tagged_pids(tag_for(env_dir)))
    victims.discard(os.getpid())
    pids = sorted(victims)
    signal_all(pids, signal.SIGTERM)
    left = wait_gone(pids, grace_s)
    signal_all(left, signal.SIGKILL)
    wait_gone(left, 5.0)
    # Late forks (a process spawning while we killed) carry the tag and our sessions' ids.
    late = [p for p in tagged_pids(tag_for(env_dir)) if p not in victims]
    signal_all(late, signal.SIGKILL)
    for pidfile, text in read.items():
        try:
            if pidfile.read_text() == text:  # not rewritten meanwhile by a new start
                pidfile.unlink()
        except OSError:
            pass
    return sorted(victims.union(late))
