"""The user's startup script, run as MWAA runs it: with bash, in the component's environment,
before requirements are installed and the component starts (so it can set, for example, a
private index's token for requirements.txt). What it exports reaches the component, except the
variables the platform protects (AIRDOCK_PROTECTED_VARIABLES)."""
from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from airdock_runtime.errors import EntrypointError, log

# Bash's own bookkeeping differs after any `source`; not exports of the script.
_BASH_NOISE = {"SHLVL", "_", "PWD", "OLDPWD", "BASH_EXECUTION_STRING"}


def protected_variables(env: dict[str, str]) -> frozenset[str]:
    return frozenset(v for v in env.get("AIRDOCK_PROTECTED_VARIABLES", "").split(",") if v)


def run_startup_script(script: Path, env: dict[str, str], timeout_s: float,
                       protected: frozenset[str] = frozenset()) -> dict[str, str]:
    """Source the script in bash (as MWAA does) and return the variables it set or changed, but
    for `protected` ones (the platform's, the user's configuration options) and Airdock's own."""
    with tempfile.NamedTemporaryFile(prefix="airdock-env-", delete=False) as fh:
        env_file = fh.name
    try:
        # The script's own output goes to our log; its environment is dumped NUL-separated to a
        # file so nothing it prints can be mistaken for a variable.
        proc = subprocess.run(
            ["bash", "-c", 'source "$1" 1>&2 || exit $?; env -0 > "$2"', "airdock-startup",
             str(script), env_file],
            env=env, timeout=timeout_s, stdin=subprocess.DEVNULL,
        )
        if proc.returncode != 0:
            raise EntrypointError(f"startup script {script} failed with exit code {proc.returncode}")
        raw = Path(env_file).read_bytes()
    except subprocess.TimeoutExpired as exc:
        raise EntrypointError(f"startup script {script} did not finish within {timeout_s:.0f}s") from exc
    finally:
        Path(env_file).unlink(missing_ok=True)
    after: dict[str, str] = {}
    for item in raw.split(b"\0"):
        if b"=" in item:
            k, _, v = item.decode(errors="surrogateescape").partition("=")
            after[k] = v
    changed: dict[str, str] = {}
    for k, v in after.items():
        if k in _BASH_NOISE or env.get(k) == v:
            continue
        if k in protected or k.startswith("AIRDOCK_"):
            log(f"startup script may not change {k}; ignored")
            continue
        changed[k] = v
    return changed
