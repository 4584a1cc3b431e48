"""Cache of Airflow virtualenvs, one per (Airflow version, requirements as installed).

Each runtime is exactly its version's lock (airdock_runtime/locks, the package set the image has:
MWAA's for that version) on the Python MWAA runs the version on, plus the runtime package and the
environment's requirements.txt, handled as MWAA handles it (airdock_runtime.requirements).
Environments that share a key share a runtime, so the second environment of a kind starts in
seconds. Builds go through uv because its global cache plus hard links make a new venv of an
already-seen Airflow version take about a second instead of half a minute, and because its
resolver errors are readable enough to hand straight to the user (MWAA reports requirement
failures the same way: as a failed update with the installer's message).
"""
from __future__ import annotations

import fcntl
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from airdock.core import catalog
from airdock_runtime.requirements import LOCKS, MWAA_DAGS, MWAA_PLUGINS, plan_install

# Bumped whenever the recipe below changes, so old cached venvs are not reused for another one.
RECIPE_VERSION = "3"
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


@dataclass(frozen=True)
class Sources:
    """What a requirements.txt may point into: the environment's DAG folder (a folder of its
    bucket) and its plugins.zip, which MWAA unpacks to /usr/local/airflow/plugins."""

    dags: Path | None = None
    plugins_zip: Path | None = None

    def digest(self, requirements: str) -> str:
        """Of what the file refers to: wheels in plugins.zip (`--find-links
        /usr/local/airflow/plugins`) or a constraints file in the DAG folder make another runtime."""
        digest = hashlib.sha256()
        if MWAA_PLUGINS in requirements and self.plugins_zip is not None and self.plugins_zip.is_file():
            digest.update(b"plugins\0" + self.plugins_zip.read_bytes())
        if MWAA_DAGS in requirements and self.dags is not None and self.dags.is_dir():
            for path in sorted(self.dags.rglob("*")):
                if path.is_file():
                    digest.update(str(path.relative_to(self.dags)).encode() + b"\0" + path.read_bytes())
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


def find_python(version: str) -> str:
    """An interpreter of Python `version` ("3.12") on this machine: on PATH, in pyenv's versions,
    or one uv manages. Each Airflow version runs on the Python MWAA runs it on."""
    pyenv_root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    candidates = [shutil.which(f"python{version}") or ""]
    candidates += sorted(glob.glob(f"{pyenv_root}/versions/{version}.*/bin/python{version}"), reverse=True)
    candidates += [f"/usr/local/bin/python{version}", f"/usr/bin/python{version}"]
    for candidate in candidates:
        if candidate and _runs_as(candidate, version):
            return candidate
    found = subprocess.run([_find_uv(), "python", "find", "--no-python-downloads", version],
                           capture_output=True, text=True)
    if found.returncode == 0 and _runs_as(found.stdout.strip(), version):
        return found.stdout.strip()
    raise RuntimeBuildError(f"Python {version} is needed for this Airflow version (MWAA runs it on {version}) "
                            f"and none was found: install it (e.g. `uv python install {version}`, "
                            f"`pyenv install {version}` or your system's python{version} package).")


def _runs_as(python: str, version: str) -> bool:
    try:
        out = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and out.stdout.strip() == version


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

    def __init__(self, cache_dir: Path, *, uv: str | None = None,
                 pythons: Callable[[str], str] = find_python) -> None:
        self.cache_dir = Path(cache_dir)
        self.uv = uv or _find_uv()
        self._find_python = pythons
        self._pythons: dict[str, str] = {}

    def python_for(self, airflow_version: str) -> str:
        wanted = catalog.release(airflow_version).python
        if wanted not in self._pythons:
            self._pythons[wanted] = self._find_python(wanted)
        return self._pythons[wanted]

    def lock(self, airflow_version: str) -> Path:
        return LOCKS / catalog.release(airflow_version).lock

    def key_for(self, airflow_version: str, requirements: str | None, sources: Sources = Sources()) -> str:
        release = catalog.release(airflow_version)
        reqs = requirements or ""
        digest = hashlib.sha256("\n".join([
            RECIPE_VERSION, airflow_version, release.python, self.lock(airflow_version).read_text(),
            runtime_package_digest(), reqs, sources.digest(reqs),
        ]).encode()).hexdigest()[:16]
        return f"airflow-{airflow_version}-py{release.python}-{digest}"

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

    def ensure(
        self,
        airflow_version: str = catalog.DEFAULT_AIRFLOW_VERSION,
        requirements: str | None = None,
        progress: Callable[[str], None] = lambda _line: None,
        sources: Sources = Sources(),
    ) -> Runtime:
        key = self.key_for(airflow_version, requirements, sources)
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
            return self._build(key, airflow_version, requirements, sources, final, progress)

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

    def _install(self, args: list[str], progress: Callable[[str], None]) -> None:
        """`uv pip install ARGS`, first from the local package cache alone: when everything is
        there, no index round trips at all (about 0.2 s instead of 5-6 s of revalidation)."""
        rc, out = self._run_uv([*args, "--offline"], lambda _l: None)
        if rc != 0:
            rc, out = self._run_uv(args, progress)
        if rc != 0:
            raise RuntimeBuildError(uv_error_message(out), log=out)

    def _build(self, key: str, airflow_version: str, requirements: str | None, sources: Sources, final: Path,
               progress: Callable[[str], None]) -> Runtime:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        release = catalog.release(airflow_version)
        tmp = Path(tempfile.mkdtemp(prefix=f".build-{key}-", dir=self.cache_dir))
        try:
            progress(f"creating virtualenv for Airflow {airflow_version} (Python {release.python})")
            # --relocatable: entry-point scripts find their interpreter relative to themselves,
            # so the venv keeps working after the rename from the temp dir.
            rc, out = self._run_uv(["venv", "--relocatable", "--python", self.python_for(airflow_version),
                                    str(tmp / "venv")], progress)
            if rc != 0:
                raise RuntimeBuildError(uv_error_message(out), log=out)
            python = str(tmp / "venv" / "bin" / "python")
            pip = ["pip", "install", "--python", python]
            progress(f"installing Airflow {airflow_version} and MWAA's packages for it ({self.lock(airflow_version).name})")
            self._install([*pip, "--link-mode", "hardlink", "-r", str(self.lock(airflow_version))], progress)
            self._install([*pip, "--no-deps", "--link-mode", "copy", str(RUNTIME_PROJECT)], progress)
            if requirements and requirements.strip():
                self._install_requirements(pip, airflow_version, requirements, sources, tmp, progress)
            (tmp / "venv" / _MARKER).write_text(json.dumps({
                "key": key, "airflow_version": airflow_version, "python_version": release.python,
                "requirements": requirements or "", "built_at": time.time(),
                "build_seconds": round(time.monotonic() - started, 2),
            }, indent=1))
            # rename() is atomic on one filesystem: readers see no venv or a complete one.
            os.rename(tmp / "venv", final)
            progress(f"runtime {key} ready in {time.monotonic() - started:.1f}s")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        runtime = self._load(final)
        assert runtime is not None
        return runtime

    def _install_requirements(self, pip: list[str], airflow_version: str, requirements: str, sources: Sources,
                              tmp: Path, progress: Callable[[str], None]) -> None:
        """requirements.txt as MWAA installs it: the plan of airdock_runtime.requirements, with
        the environment's plugins.zip unpacked where `/usr/local/airflow/plugins` points."""
        plugins = tmp / "plugins"
        plugins.mkdir()
        if sources.plugins_zip is not None and sources.plugins_zip.is_file():
            with zipfile.ZipFile(sources.plugins_zip) as archive:
                archive.extractall(plugins)  # checked for entries escaping the folder before any build
        plan = plan_install(requirements, airflow_version, dags_folder=sources.dags or tmp / "dags",
                            plugins_folder=plugins)
        for change in plan.changes:
            progress(f"requirements.txt: {change}")
        (tmp / "requirements.txt").write_text(plan.requirements)
        (tmp / "constraints.txt").write_text(plan.constraints)
        progress("installing requirements.txt")
        self._install([*pip, "--link-mode", "hardlink", "-r", str(tmp / "requirements.txt"),
                       "-c", str(tmp / "constraints.txt")], progress)

    def remove(self, key: str) -> None:
        with _file_lock(self.cache_dir / ".locks" / f"{key}.lock"):
            shutil.rmtree(self.path_for(key), ignore_errors=True)

    def list(self) -> list[Runtime]:
        if not self.cache_dir.is_dir():
            return []
        found = (self._load(p) for p in sorted(self.cache_dir.iterdir()) if p.is_dir())
        return [r for r in found if r is not None]
