"""Resolve each Airflow runtime's package set (locks/*.in) into its lock (locks/*.txt).

Local runtime virtualenvs and the image install exactly a lock, so both run the same packages.
A lock is one `uv pip compile` for linux/amd64, checked to pin the very same packages for
linux/arm64 (Fargate runs both); a difference is an error, because one lock serves both.

    .venv/bin/python scripts/lock_runtimes.py                 # re-resolve every lock, keeping pins
    .venv/bin/python scripts/lock_runtimes.py 3.3.2 --upgrade # newest releases for one version
    .venv/bin/python scripts/lock_runtimes.py --seed official # from Airflow's own constraints

Without flags uv keeps the pins already in a lock and changes only what an edited .in requires.
`--seed official` resolves against Airflow's constraints file for the version, as MWAA builds its
image; `--seed TEMPLATE` reads them from elsewhere (a URL or a path with {version} and {python}), e.g.
a folder of copies on a machine that cannot reach GitHub. A seed pin for a package the .in
itself gives a version for is left out: the .in says where Airdock deviates.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCKS = ROOT / "layers" / "core" / "airdock_runtime" / "locks"
UV = ROOT / ".venv" / "bin" / "uv"
PLATFORMS = ("x86_64-manylinux_2_28", "aarch64-manylinux_2_28")
AIRFLOW_CONSTRAINTS = ("https://raw.githubusercontent.com/apache/airflow/"
                       "constraints-{version}/constraints-{python}.txt")
_LOCK_NAME = re.compile(r"^airflow-(?P<version>\d+\.\d+\.\d+)-py(?P<python>\d+\.\d+)\.in$")
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*)$")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(text: str) -> dict[str, str]:
    """name -> version of every `name==version` line (comments, markers and options ignored)."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].split(";", 1)[0].strip()
        if "==" in line and not line.startswith("-"):
            name, version = line.split("==", 1)
            found[canonical(name.split("[", 1)[0])] = version.strip()
    return found


def versioned_names(in_text: str) -> set[str]:
    """The packages a .in gives a version specifier for."""
    names = set()
    for line in in_text.splitlines():
        line = line.split("#", 1)[0].strip()
        m = _REQUIREMENT.match(line)
        if m and not line.startswith("-") and re.match(r"[<>=!~]", m.group(3)):
            names.add(canonical(m.group(1)))
    return names


def read_seed(template: str, version: str, python: str) -> str:
    source = template.format(version=version, python=python)
    if re.match(r"https?://", source):
        with urllib.request.urlopen(source, timeout=60) as answer:  # noqa: S310 (fixed host)
            return answer.read().decode()
    return Path(source).read_text()


def uv(args: list[str]) -> str:
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("VIRTUAL_ENV", None)
    done = subprocess.run([str(UV), *args], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"uv {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def lock(source: Path, version: str, python: str, *, upgrade: bool, seed: str | None) -> None:
    target = source.with_suffix(".txt")
    args = ["pip", "compile", str(source), "-o", str(target), "--python-version", python,
            "--python-platform", PLATFORMS[0], "--no-progress", "--quiet",
            "--custom-compile-command", "make locks", "--no-annotate"]
    if upgrade:
        args.append("--upgrade")
    with tempfile.TemporaryDirectory() as tmp:
        if seed:
            skip = versioned_names(source.read_text())
            kept = [ln for ln in read_seed(seed, version, python).splitlines()
                    if ln.strip() and not ln.startswith("#") and canonical(ln.split("==")[0]) not in skip]
            seed_file = Path(tmp) / f"airflow-constraints-{version}-{python}.txt"
            seed_file.write_text("\n".join(kept) + "\n")
            args += ["-c", str(seed_file)]
        uv(args)
    locked = pins(target.read_text())
    for platform in PLATFORMS[1:]:
        other = pins(uv(["pip", "compile", str(source), "-c", str(target), "--python-version", python,
                         "--python-platform", platform, "--no-progress", "--quiet", "--no-header",
                         "--no-annotate"]))
        if other != locked:
            diff = sorted(set(other.items()) ^ set(locked.items()))
            raise SystemExit(f"{target.name}: {platform} resolves differently: {diff}")
    print(f"{target.name}: {len(locked)} packages, same on {', '.join(PLATFORMS)}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("versions", nargs="*", help="Airflow versions to lock (default: all)")
    parser.add_argument("--upgrade", action="store_true", help="take the newest allowed releases")
    parser.add_argument("--seed", metavar="TEMPLATE",
                        help="resolve against Airflow's constraints for the version: 'official' or a "
                             "URL or path with {version} and {python}")
    args = parser.parse_args(argv)
    if args.seed == "official":
        args.seed = AIRFLOW_CONSTRAINTS
    sources = sorted(LOCKS.glob("airflow-*.in"))
    chosen = [(s, m["version"], m["python"]) for s in sources if (m := _LOCK_NAME.match(s.name))]
    if args.versions:
        unknown = set(args.versions) - {v for _s, v, _p in chosen}
        if unknown:
            raise SystemExit(f"no locks/airflow-<version>-py<python>.in for {', '.join(sorted(unknown))}")
        chosen = [c for c in chosen if c[1] in args.versions]
    for source, version, python in chosen:
        lock(source, version, python, upgrade=args.upgrade, seed=args.seed)


if __name__ == "__main__":
    main(sys.argv[1:])
