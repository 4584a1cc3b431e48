"""The MWAA Serverless engine's virtualenv: exactly the lock (Airflow 3.0.6 on Python 3.12),
built with uv into the shared runtime cache (Settings.runtime_cache: ~/.cache/airdock/runtimes)
and reused by every installation on the machine; the first build fetches from PyPI, later ones
link from uv's cache in seconds."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import airdock_serverless_engine
from airdock.local.runtime import RuntimeBuildError, _file_lock, _find_uv, find_python, uv_error_message

ENGINE_LOCK = "engine-3.0.6-py3.12"
PYTHON_VERSION = "3.12"
_MARKER = "airdock-runtime.json"
LOCKS = Path(airdock_serverless_engine.__file__).with_name("locks")




@dataclass(frozen=True)
class EngineRuntime:
    venv: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def airflow(self) -> Path:
        return self.venv / "bin" / "airflow"


def ensure_runtime(cache: Path, lock: str = ENGINE_LOCK,
                   progress: Callable[[str], None] = lambda _m: None) -> EngineRuntime:
    """The venv of `lock` (a file in airdock_serverless_engine/locks), built once per lock content
    in the runtime cache (shared with the environments' runtimes)."""
    pinned = (LOCKS / f"{lock}.txt").read_text()
    key = f"{lock}-{hashlib.sha256(pinned.encode()).hexdigest()[:16]}"
    final = cache / key
    if (final / _MARKER).is_file():
        return EngineRuntime(final)
    with _file_lock(cache / ".locks" / f"{key}.lock"):
        if (final / _MARKER).is_file():
            return EngineRuntime(final)
        python = find_python(lock.rsplit("-py", 1)[1])
        uv = _find_uv()
        cache.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".build-{key}-", dir=cache))
        started = time.monotonic()
        env = {**os.environ, "NO_COLOR": "1", "UV_NO_PROGRESS": "1"}
        env.pop("VIRTUAL_ENV", None)
        try:
            progress(f"creating the engine's virtualenv ({lock})")
            for args in (["venv", "--relocatable", "--python", python, str(tmp / "venv")],
                         ["pip", "install", "--python", str(tmp / "venv" / "bin" / "python"), "--link-mode",
                          "hardlink", "--no-deps", "-r", str(LOCKS / f"{lock}.txt")]):
                out = subprocess.run([uv, *args], capture_output=True, text=True, env=env)
                if out.returncode != 0:
                    raise RuntimeBuildError(uv_error_message(out.stdout + out.stderr), log=out.stdout + out.stderr)
            (tmp / "venv" / _MARKER).write_text(json.dumps({"key": key, "lock": lock, "built_at": time.time(),
                                                            "build_seconds": round(time.monotonic() - started, 1)}))
            os.rename(tmp / "venv", final)
            progress(f"engine runtime ready in {time.monotonic() - started:.0f}s")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return EngineRuntime(final)
