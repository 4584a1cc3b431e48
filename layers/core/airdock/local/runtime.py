"""Cache of Airflow virtualenvs, one per (Airflow version, requirements hash, Python version).

Environments that share a key share a runtime, so the second environment of a kind starts in
seconds. Builds go through uv because its global cache plus hard links make a new venv of an
already-seen Airflow version take about a second instead of half a minute, and because its
resolver errors are readable enough to hand straight to the user (MWAA reports requirement
failures the same way: as a failed update with the installer's message).
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from airdock.core import catalog

# Bumped whenever the base package set below changes, so old cached venvs are not reused for a
# different recipe.
RECIPE_VERSION = "2"

# What every runtime needs besides Airflow itself.
# - celery 5.7.0 breaks the Celery provider ("cannot import name 'retry'"), so pin 5.6.3.
# - psycopg2 is the sync driver (metadata DB, kombu broker, Celery results); Airflow 3 also opens
#   async sessions and needs asyncpg for them.
# (Each environment's PostgreSQL comes from the pgserver package in Airdock's own environment.)
_COMMON_PACKAGES: tuple[str, ...] = (
    "celery==5.6.3",
    "psycopg2-binary==2.9.13",
)
_VERSION_PACKAGES: dict[str, tuple[str, ...]] = {
    "3": ("asyncpg==0.32.0",),
    # Left alone, uv settles on providers-celery 3.6.1 for Airflow 2.11 (an old release); pin the
    # one we ran our tests with.
    "2": ("apache-airflow-providers-celery==3.26.0",),
}

_CONSTRAINTS_DIR = Path(__file__).with_name("runtime_constraints")
_MARKER = "airdock-runtime.json"
# The distribution of the code that runs inside environments (runtime/pyproject.toml), installed
# into every runtime as into the image.
RUNTIME_PROJECT = Path(__file__).resolve().parents[4] / "runtime"
RUNTIME_PACKAGE = Path(__file__).resolve().parents[2] / "airdock_runtime"


def runtime_package_digest() -> str:
    """A digest of airdock_runtime's sources: part of every runtime's key, so a runtime always
    runs the entrypoint and web front of the Airdock that starts it (several checkouts may share
    one cache)."""
    digest = hashlib.sha256()
    for path in sorted(RUNTIME_PACKAGE.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(RUNTIME_PACKAGE)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


class RuntimeBuildError(Exception):
    """The runtime could not be built; the message is what the user has to fix."""

    def __init__(self, message: str, *, log: str = "") -> None:
        super().__init__(message)
        self.message = message
        # The full installer output, for logs; the message alone is meant for the user.
        self.log = log


@dataclass(frozen=True)
class Runtime:
    key: str
    airflow_version: str
    python_version: str
    venv: Path
    python: Path
    airflow: Path

    @property
    def airflow_major(self) -> int:
        return int(self.airflow_version.split(".", 1)[0])

    @property
    def bin_dir(self) -> Path:
        return self.venv / "bin"


def _find_uv() -> str:
    # Prefer the uv that came from PyPI with Airdock itself: its version is pinned by the project,
    # whereas whatever is on PATH may be anything.
    sibling = Path(sys.executable).parent / "uv"
    if sibling.is_file() and os.access(sibling, os.X_OK):
        return str(sibling)
    found = shutil.which("uv")
    if not found:
        raise RuntimeBuildError("uv not found: install Airdock's dependencies (uv is one of them)")
    return found


def _base_python() -> str:
    # Build runtimes on the interpreter behind Airdock's own venv, not the venv itself, so the
    # runtime does not depend on Airdock's venv staying where it is.
    base = getattr(sys, "_base_executable", None) or sys.executable
    return str(Path(base).resolve())


def _python_version(python: str) -> str:
    out = subprocess.run(
        [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        check=True, capture_output=True, text=True,
    )
    return out.stdout.strip()


def normalize_requirements(requirements: str | None) -> str:
    """Requirements text with comments and blank lines dropped, so cosmetic edits share a venv."""
    if not requirements:
        return ""
    lines = []
    for raw in requirements.splitlines():
        line = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if line:
            lines.append(line)
    return "\n".join(lines)


def base_packages(airflow_version: str) -> list[str]:
    major = airflow_version.split(".", 1)[0]
    return [f"apache-airflow[celery]=={airflow_version}", *_COMMON_PACKAGES,
            *_VERSION_PACKAGES.get(major, ())]


_BOX = re.compile(r"^[\s│╰─▶×╭╮╯|]+")
_PREFIX = re.compile(r"^(error|cause|caused by|warning):\s*", re.IGNORECASE)


def uv_error_message(output: str) -> str:
    """The lines of uv's output a user needs: the resolver's explanation or the failing build.

    uv prints e.g. "error: No solution found when resolving dependencies" then
    "  cause: Because nonexistent-pkg was not found in the package registry ...": we keep that
    chain (without the labels) and drop the chatter before it.
    """
    lines = [ln.rstrip() for ln in output.splitlines()]
    picked: list[str] = []
    capture = False
    for ln in lines:
        stripped = _BOX.sub("", ln).strip()
        if not stripped:
            continue
        if ln.lstrip().startswith(("×", "error:")):
            capture = True
        if capture and not stripped.startswith(("hint:", "help:")):
            picked.append(_PREFIX.sub("", stripped))
    if not picked:
        picked = [_BOX.sub("", ln).strip() for ln in lines if ln.strip()][-5:]
    parts: list[str] = []
    for p in picked:
        # uv splits one explanation over several lines; join them into readable sentences.
        if parts and not parts[-1].endswith((".", ":", ",")) and p[:1].isupper():
            parts[-1] += ":"
        parts.append(p)
    return " ".join(parts)[:4000] or "uv failed without output"


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class RuntimeCache:
    """Builds and reuses Airflow virtualenvs under `cache_dir`."""

    def __init__(self, cache_dir: Path, *, python: str | None = None, uv: str | None = None) -> None:
        self.cache_dir = Path(cache_dir)
        self.python = python or _base_python()
        self.uv = uv or _find_uv()
        self._python_version: str | None = None

    @property
    def python_version(self) -> str:
        if self._python_version is None:
            self._python_version = _python_version(self.python)
        return self._python_version

    def key_for(self, airflow_version: str, requirements: str | None) -> str:
        reqs = normalize_requirements(requirements)
        constraints = self.constraints_file(airflow_version)
        pinned = constraints.read_text() if constraints else ""
        digest = hashlib.sha256("\n".join(
            [RECIPE_VERSION, airflow_version, self.python_version, reqs, pinned, runtime_package_digest()]
        ).encode()).hexdigest()[:16]
        return f"airflow-{airflow_version}-py{self.python_version}-{digest}"

    def path_for(self, key: str) -> Path:
        return self.cache_dir / key

    def _load(self, venv: Path) -> Runtime | None:
        marker = venv / _MARKER
        if not marker.is_file():
            return None
        meta = json.loads(marker.read_text())
        return Runtime(
            key=meta["key"], airflow_version=meta["airflow_version"],
            python_version=meta["python_version"], venv=venv,
            python=venv / "bin" / "python", airflow=venv / "bin" / "airflow",
        )

    def constraints_file(self, airflow_version: str) -> Path | None:
        """A frozen, tested resolution for this Airflow/Python pair, if we ship one.

        Like MWAA's use of Airflow's constraints files: a user's requirements resolve against the
        versions we tested, and a build needs no fresh index look-ups for the base packages.
        """
        f = _CONSTRAINTS_DIR / f"airflow-{airflow_version}-py{self.python_version}.txt"
        return f if f.is_file() else None

    def ensure(
        self,
        airflow_version: str = catalog.DEFAULT_AIRFLOW_VERSION,
        requirements: str | None = None,
        progress: Callable[[str], None] = lambda _line: None,
    ) -> Runtime:
        key = self.key_for(airflow_version, requirements)
        final = self.path_for(key)
        existing = self._load(final)
        if existing is not None:
            return existing
        with _file_lock(self.cache_dir / ".locks" / f"{key}.lock"):
            # Another process may have finished the same build while we waited for the lock.
            existing = self._load(final)
            if existing is not None:
                progress(f"runtime {key} built by another process")
                return existing
            return self._build(key, airflow_version, requirements, final, progress)

    def _run_uv(self, args: list[str], progress: Callable[[str], None]) -> tuple[int, str]:
        env = {**os.environ, "NO_COLOR": "1", "UV_NO_PROGRESS": "1"}
        env.pop("VIRTUAL_ENV", None)
        proc = subprocess.Popen(
            [self.uv, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        )
        out: list[str] = []
        assert proc.stdout is not None
        for line in proc.stdout:
            out.append(line)
            s = line.strip()
            # Forward uv's phase summaries only; per-package lines would flood a status page.
            if s.startswith(("Resolved", "Prepared", "Installed", "Downloading", "Building",
                             "Using CPython", "Creating virtual")):
                progress(s)
        return proc.wait(), "".join(out)

    def _build(self, key: str, airflow_version: str, requirements: str | None, final: Path,
               progress: Callable[[str], None]) -> Runtime:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        tmp = Path(tempfile.mkdtemp(prefix=f".build-{key}-", dir=self.cache_dir))
        try:
            progress(f"creating virtualenv for Airflow {airflow_version} (Python {self.python_version})")
            # --relocatable: entry-point scripts find their interpreter relative to themselves,
            # so the venv keeps working after the rename from the temp dir.
            rc, out = self._run_uv(["venv", "--relocatable", "--python", self.python, str(tmp / "venv")],
                                   progress)
            if rc != 0:
                raise RuntimeBuildError(uv_error_message(out), log=out)
            pkgs = base_packages(airflow_version)
            args = ["pip", "install", "--python", str(tmp / "venv" / "bin" / "python"),
                    "--link-mode", "hardlink", *pkgs]
            reqs = normalize_requirements(requirements)
            if reqs:
                (tmp / "requirements.txt").write_text(reqs + "\n")
                args += ["-r", str(tmp / "requirements.txt")]
            constraints = self.constraints_file(airflow_version)
            if constraints is not None:
                args += ["-c", str(constraints)]
            progress(f"installing {', '.join(pkgs)}" + (" and requirements.txt" if reqs else ""))
            rc, out = 1, ""
            if constraints is not None:
                # Everything pinned: if the uv cache has it all, no index round trips at all
                # (about 0.2 s instead of 5-6 s of metadata revalidation).
                rc, out = self._run_uv([*args, "--offline"], lambda _l: None)
                if rc == 0:
                    progress("installed from the local package cache")
            if rc != 0:
                rc, out = self._run_uv(args, progress)
            if rc != 0:
                raise RuntimeBuildError(uv_error_message(out), log=out)
            rc, out = self._run_uv(["pip", "install", "--python", str(tmp / "venv" / "bin" / "python"),
                                    "--no-deps", "--link-mode", "copy", str(RUNTIME_PROJECT)], progress)
            if rc != 0:
                raise RuntimeBuildError(uv_error_message(out), log=out)
            (tmp / "venv" / _MARKER).write_text(json.dumps({
                "key": key, "airflow_version": airflow_version,
                "python_version": self.python_version, "requirements": reqs,
                "built_at": time.time(), "build_seconds": round(time.monotonic() - started, 2),
            }, indent=1))
            # rename() is atomic on one filesystem: readers see no venv or a complete one.
            os.rename(tmp / "venv", final)
            progress(f"runtime {key} ready in {time.monotonic() - started:.1f}s")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        runtime = self._load(final)
        assert runtime is not None
        return runtime

    def remove(self, key: str) -> None:
        with _file_lock(self.cache_dir / ".locks" / f"{key}.lock"):
            shutil.rmtree(self.path_for(key), ignore_errors=True)

    def list(self) -> list[Runtime]:
        if not self.cache_dir.is_dir():
            return []
        found = (self._load(p) for p in sorted(self.cache_dir.iterdir()) if p.is_dir())
        return [r for r in found if r is not None]
