"""Rehearsal of the Airflow image, without Docker: its packages are exactly one tested lock.

For every supported Airflow version and both Fargate platforms, the package installs of
images/airflow/Dockerfile are run as `uv pip compile --python-platform` with the Python the
Dockerfile picks for the version; what they resolve to must be the version's lock in
layers/core/airdock_runtime/locks, which local runtimes install too, with a wheel for every
compiled package (the image has no compiler). Needs PyPI, as the image build does.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

import pytest

from airdock.core import catalog
from airdock_runtime.requirements import bundled_locks, lock_pins, plan_install

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "images" / "airflow" / "Dockerfile"
LOCKS = ROOT / "layers" / "core" / "airdock_runtime" / "locks"
BIN = Path(sys.executable).parent
PLATFORMS = {"linux/amd64": "x86_64-manylinux_2_28", "linux/arm64": "aarch64-manylinux_2_28"}
# Pure-Python packages published only as source: building them needs no compiler.
SOURCE_ONLY = {"dill", "python-nvd3", "unicodecsv"}
VERSIONS = sorted(set(catalog.AIRFLOW_VERSIONS) | set(bundled_locks(LOCKS)),
                  key=lambda v: tuple(int(p) for p in v.split(".")))


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile's (INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    logical, pending = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if line.lstrip().startswith("#") and not pending:
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    found = []
    for line in logical:
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def expand(text: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args.get(m[1] or m[2], m[0]), text)


def build_args(version: str) -> dict[str, str]:
    """The build arguments of `docker build --build-arg AIRFLOW_VERSION=version`: the defaults the
    Dockerfile gives (globally or in the final stage), that one overridden."""
    ins = instructions()
    first_from = next(i for i, (k, _a) in enumerate(ins) if k == "FROM")
    last_from = max(i for i, (k, _a) in enumerate(ins) if k == "FROM")
    args = {m[1]: m[2] for k, a in ins[:first_from] + ins[last_from:]
            if k == "ARG" and (m := re.match(r"(\w+)=(\S+)", a))}
    return {**args, "AIRFLOW_VERSION": version}


def image_python(version: str) -> str:
    """The Python of the image built with AIRFLOW_VERSION=version, following the FROM stages."""
    ins = instructions()
    args = build_args(version)
    stages: dict[str, str] = {}
    image = ""
    for keyword, rest in ins:
        if keyword == "FROM":
            parts = rest.split()
            image = expand(parts[-3] if len(parts) >= 3 and parts[-2].upper() == "AS" else parts[-1], args)
            if len(parts) >= 3 and parts[-2].upper() == "AS":
                stages[parts[-1]] = image
    while image in stages:
        image = stages[image]
    m = re.match(r"python:(\d+\.\d+)", image)
    assert m, f"the image for Airflow {version} is built on {image!r}, not on a python:X.Y image"
    return m[1]


def image_installs(version: str) -> list[list[str]]:
    """The arguments of each `uv pip install --system` of the final stage (the runtime package's
    --no-deps install aside), with the Dockerfile's own shell computing them: its RUN lines are run
    by bash with uv, pip and python stubbed and nothing else on PATH, COPY destinations mapped back
    to the repository."""
    ins = instructions()
    last_from = max(i for i, (k, _a) in enumerate(ins) if k == "FROM")
    copies = {}
    for keyword, rest in ins[last_from:]:
        if keyword == "COPY":
            *sources, dest = shlex.split(rest)
            copies[dest] = str(ROOT / sources[0])
    runs = [rest for keyword, rest in ins[last_from:]
            if keyword == "RUN" and "uv pip install --system" in rest and "--no-deps" not in rest]
    python = image_python(version)
    with tempfile.TemporaryDirectory() as tmp:
        record = shlex.quote(str(Path(tmp) / "installs"))
        # uv records each install's arguments, NUL-separated, one install per line.
        uv = f'uv() {{ [ "$1 $2" = "pip install" ] || return 1; shift 2; printf "%s\\0" "$@" >> {record}; echo >> {record}; }}'
        script = "\n".join(["set -e", "pip() { :; }", f"python() {{ echo {python}; }}", uv,
                            *(to_repository_paths(run, copies) for run in runs)])
        empty = Path(tmp) / "bin"
        empty.mkdir()
        done = subprocess.run(["/bin/bash", "-c", script], capture_output=True, text=True, cwd=tmp,
                              env={**build_args(version), "PATH": str(empty), "HOME": tmp})
        assert done.returncode == 0, done.stderr
        installs = Path(tmp) / "installs"
        calls = [line.split("\0")[:-1] for line in installs.read_text().splitlines()] if installs.exists() else []
    return [[a for a in call if a != "--system"] for call in calls]


def to_repository_paths(text: str, copies: dict[str, str]) -> str:
    for dest in sorted(copies, key=len, reverse=True):
        text = text.replace(dest, copies[dest].rstrip("/") + "/" if dest.endswith("/") else copies[dest])
    return text


def as_compile_args(install: list[str], tmp: Path) -> list[str]:
    """`uv pip install` arguments as `uv pip compile` takes them: files, not package names."""
    args, names = [], []
    words = iter(install)
    for word in words:
        if word in ("-r", "--requirement"):
            args.append(next(words))
        elif word in ("-c", "--constraint"):
            args += [word, next(words)]
        elif word.startswith("-"):
            args.append(word)
        else:
            names.append(word)
    if names:
        (tmp / "named.in").write_text("\n".join(names) + "\n")
        args.append(str(tmp / "named.in"))
    return args


def lock_for(version: str) -> Path:
    python = image_python(version)
    lock = LOCKS / f"airflow-{version}-py{python}.txt"
    assert lock.is_file(), f"no lock {lock.name} for Airflow {version} on Python {python} (the image's Python)"
    return lock


def uv_compile(args: list[str], python: str, platform: str) -> tuple[int, str]:
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("VIRTUAL_ENV", None)
    done = subprocess.run([str(BIN / "uv"), "pip", "compile", "--python-version", python, "--python-platform", platform,
                           "--no-header", "--no-annotate", "--quiet", *args], capture_output=True, text=True, env=env)
    return done.returncode, done.stdout if done.returncode == 0 else done.stderr


def image_resolution(version: str, platform: str) -> tuple[int, str]:
    installs = image_installs(version)
    if len(installs) != 1:
        return 1, f"the image has {len(installs)} `uv pip install --system` steps for its packages, not one"
    wheels_only: list[str] = []
    lock = LOCKS / f"airflow-{version}-py{image_python(version)}.txt"
    if lock.is_file():
        for name in sorted(set(lock_pins(lock.read_text())) - SOURCE_ONLY):
            wheels_only += ["--only-binary", name]
    with tempfile.TemporaryDirectory() as tmp:
        return uv_compile([*as_compile_args(installs[0], Path(tmp)), *wheels_only], image_python(version),
                          PLATFORMS[platform])


def mwaa_requirements_resolution(version: str) -> tuple[int, str]:
    """The user guide's pattern, Airflow's constraints URL then a provider, resolved on top of the
    runtime (which holds the lock) as the plan for it says."""
    python = image_python(version)
    text = (f'--constraint "https://raw.githubusercontent.com/apache/airflow/constraints-{version}/'
            f'constraints-{python}.txt"\napache-airflow-providers-snowflake\n')
    with tempfile.TemporaryDirectory() as tmp:
        plan = plan_install(text, version, dags_folder=Path(tmp) / "dags", plugins_folder=Path(tmp) / "plugins")
        (Path(tmp) / "requirements.txt").write_text(plan.requirements)
        (Path(tmp) / "constraints.txt").write_text(plan.constraints)
        return uv_compile([str(lock_for(version)), str(Path(tmp) / "requirements.txt"),
                           "-c", str(Path(tmp) / "constraints.txt")], python, PLATFORMS["linux/amd64"])


MWAA_REQUIREMENTS_VERSIONS = ["2.10.3", "3.3.2"]


@cache
def resolutions() -> dict[tuple[str, str], tuple[int, str]]:
    """Every resolution this file checks, (version, platform or "mwaa-requirements") -> uv's answer.
    They are bound by index round trips, not CPU, so they run together."""
    cases = [(v, p) for v in VERSIONS for p in PLATFORMS] + [(v, "mwaa-requirements") for v in MWAA_REQUIREMENTS_VERSIONS]

    def run(case: tuple[str, str]) -> tuple[int, str]:
        version, what = case
        try:
            if what == "mwaa-requirements":
                return mwaa_requirements_resolution(version)
            return image_resolution(version, what)
        except (AssertionError, KeyError, OSError) as e:  # one case's failure is that case's alone
            return 1, f"{type(e).__name__}: {e}"

    with ThreadPoolExecutor(max_workers=len(cases)) as pool:
        return dict(zip(cases, pool.map(run, cases)))


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("version", VERSIONS)
def test_the_image_installs_exactly_the_lock_local_runtimes_use(version: str, platform: str) -> None:
    rc, out = resolutions()[(version, platform)]
    assert rc == 0, f"the image's packages for Airflow {version} do not resolve on {platform}:\n{out}"
    locked = lock_pins(lock_for(version).read_text())
    resolved = lock_pins(out)
    assert resolved == locked, (f"{platform}: the image would install "
                                f"{sorted(set(resolved.items()) - set(locked.items()))} instead of "
                                f"{sorted(set(locked.items()) - set(resolved.items()))}")


def test_each_lock_is_the_resolution_of_its_package_set() -> None:
    # Editing a .in without running `make locks` leaves a lock that no longer says what it installs.
    resolutions()  # fetches every package's index page and metadata: what follows needs no network
    def check(version: str) -> str:
        lock = lock_for(version)
        python = image_python(version)
        rc, out = uv_compile([str(lock.with_suffix(".in")), "-c", str(lock), "--offline"], python,
                             PLATFORMS["linux/amd64"])
        if rc != 0:
            return f"{lock.with_suffix('.in').name} does not resolve within its lock:\n{out}"
        if lock_pins(out) != lock_pins(lock.read_text()):
            diff = sorted(set(lock_pins(out).items()) ^ set(lock_pins(lock.read_text()).items()))
            return f"{lock.name} is not the resolution of its .in (run `make locks`): {diff}"
        return ""

    with ThreadPoolExecutor(max_workers=6) as pool:
        problems = [p for p in pool.map(check, VERSIONS) if p]
    assert not problems, "\n".join(problems)


def test_every_version_airdock_offers_has_its_lock_and_the_image_s_python() -> None:
    # Local runtimes take the Python and lock from the catalog, the image from the Dockerfile.
    for version in catalog.AIRFLOW_VERSIONS:
        release = catalog.release(version)
        assert (LOCKS / release.lock).is_file(), f"Airflow {version} is offered but has no lock {release.lock}"
        assert image_python(version) == release.python, (
            f"the image runs Airflow {version} on Python {image_python(version)}, local runtimes on {release.python}")


@pytest.mark.parametrize("version", MWAA_REQUIREMENTS_VERSIONS)
def test_a_typical_mwaa_requirements_txt_resolves_on_top_of_the_runtime_without_github(version: str) -> None:
    # GitHub is out of reach here, as from a private environment: the constraints URL must come
    # from the bundled lock. The runtime already holds the lock: the user's file moves none of it.
    rc, out = resolutions()[(version, "mwaa-requirements")]
    assert rc == 0, out
    resolved, locked = lock_pins(out), lock_pins(lock_for(version).read_text())
    assert "apache-airflow-providers-snowflake" in resolved
    assert {n: resolved.get(n) for n in locked} == locked


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    done = subprocess.run([str(BIN / "hadolint"), "--no-color", str(DOCKERFILE)], capture_output=True, text=True)
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr
