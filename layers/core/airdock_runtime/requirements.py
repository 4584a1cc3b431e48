"""An environment's requirements.txt, handled as MWAA handles it, as one pure function.

`plan_install` turns the user's file into what to install on top of the environment's runtime
(which already holds its version's lock, locks/airflow-<version>-py<python>.txt):

- MWAA adds its constraints when the file has no `--constraint` line; here they are the bundled
  lock. MWAA's check is a plain text search for "-c " or "--constraint " on any line, commented
  ones included (a commented-out line is how a user opts out without naming a file), and it is
  kept as it is (aws/amazon-mwaa-docker-images, mwaa/utils/user_requirements.py).
- Airflow's official constraints URL for a version Airdock bundles becomes that version's lock
  file, so a typical MWAA requirements.txt installs with no network; other URLs stay as written.
- `/usr/local/airflow/dags` and `/usr/local/airflow/plugins`, where MWAA puts the environment's
  DAGs and unpacked plugins.zip, mean this environment's folders wherever a path can stand
  (`--find-links`, `-f`, `-c`, `-r`, file paths and file:// URLs): MWAA's documented way to ship
  wheels is `--find-links /usr/local/airflow/plugins` with `--no-index`.
- MWAA always constrains the packages its platform relies on (etc/mwaa_essential_constraints.txt,
  applied by its safe-pip-install), so a requirement cannot replace Airflow or Celery under the
  running components; the same packages are constrained here to the lock's versions.

Standard library only: this runs inside environments, before anything else is installed.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

LOCKS = Path(__file__).resolve().with_name("locks")
MWAA_DAGS = "/usr/local/airflow/dags"
MWAA_PLUGINS = "/usr/local/airflow/plugins"

_LOCK_NAME = re.compile(r"^airflow-(?P<version>\d+\.\d+\.\d+)-py(?P<python>\d+\.\d+)\.txt$")
_OFFICIAL_CONSTRAINTS = re.compile(
    r"^https?://raw\.githubusercontent\.com/apache/airflow/(?:refs/(?:tags|heads)/)?"
    r"constraints-(?P<version>\d+\.\d+\.\d+)/"
    r"constraints-(?:(?:no|source)-providers-)?(?P<python>\d+\.\d+)\.txt$")
# MWAA's own test for "this file brings its constraints" (see the module docstring).
_MWAA_HAS_CONSTRAINT = re.compile(r"-c |--constraint ")
# Options whose value is a file, directory or URL.
_PATH_OPTIONS = ("-c", "--constraint", "-r", "--requirement", "-f", "--find-links", "-e",
                 "--editable")
_OPTION = re.compile(r"^(?P<name>--?[A-Za-z][\w-]*)(?:(?P<sep>=|\s+)(?P<value>.*))?$")
# An MWAA folder at the start of a path: after file://, or not inside a longer path or name.
_MWAA_FOLDER = re.compile(
    r"(?:(?<=file://)|(?<![\w/.:~-]))/usr/local/airflow/(?P<folder>dags|plugins)(?=[/\s\"';#]|$)")
# The packages MWAA pins whatever the user asks (etc/mwaa_essential_constraints.txt of every
# image), plus the rest of Airflow itself, which Airdock's components run from the same venv.
ESSENTIAL_PACKAGES = frozenset({
    "apache-airflow", "apache-airflow-core", "apache-airflow-task-sdk",
    "flask-appbuilder", "flask-babel", "flask-bcrypt", "flask-caching", "flask-jwt-extended",
    "flask-limiter", "flask-login", "flask-sqlalchemy", "flask-session", "flask-wtf", "flask",
    "gunicorn", "billiard", "celery", "gevent", "greenlet", "kombu", "vine",
    "sqlalchemy-jsonfield", "sqlalchemy-utils", "sqlalchemy", "statsd", "watchtower",
    "fluent-logger",
})


@dataclass(frozen=True)
class InstallPlan:
    """What to run: `pip install -r <requirements> -c <constraints>` with both written to files."""

    requirements: str
    constraints: str
    # One line per change made to the user's file, for the install log.
    changes: tuple[str, ...]


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def bundled_locks(locks_dir: Path = LOCKS) -> dict[str, Path]:
    """Airflow version -> its lock file, for every version this runtime package bundles."""
    found: dict[str, Path] = {}
    for path in sorted(locks_dir.glob("airflow-*.txt")):
        m = _LOCK_NAME.match(path.name)
        if m:
            found[m["version"]] = path
    return found


def lock_pins(text: str) -> dict[str, str]:
    """Canonical name -> version of every `name==version` line of a lock."""
    pins: dict[str, str] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].split(";", 1)[0].strip()
        if "==" in line and not line.startswith("-"):
            name, version = line.split("==", 1)
            pins[_canonical(name.split("[", 1)[0])] = version.strip()
    return pins


def has_constraints(text: str) -> bool:
    """MWAA's test: does the file bring its own constraints (or opt out of MWAA's)?"""
    return any(_MWAA_HAS_CONSTRAINT.search(line) for line in text.splitlines())


def _logical_lines(text: str) -> list[str]:
    # pip joins a line ending in a backslash with the next one.
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        if raw.endswith("\\") and not raw.lstrip().startswith("#"):
            pending += raw[:-1]
            continue
        lines.append(pending + raw)
        pending = ""
    if pending:
        lines.append(pending)
    return lines


def _split_comment(line: str) -> tuple[str, str]:
    # As pip: a comment starts at a '#' at the line's start or after whitespace.
    m = re.search(r"(^|\s)#", line)
    if not m:
        return line, ""
    return line[:m.start()], line[m.start():]


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _quote(value: str) -> str:
    return f'"{value}"' if re.search(r"\s", value) else value


class _Rewriter:
    def __init__(self, dags_folder: Path, plugins_folder: Path, locks: dict[str, Path]) -> None:
        self.folders = {"dags": str(dags_folder), "plugins": str(plugins_folder)}
        self.locks = locks
        self.changes: list[str] = []

    def paths(self, text: str) -> str:
        def swap(m: re.Match[str]) -> str:
            return self.folders[m["folder"]]

        new = _MWAA_FOLDER.sub(swap, text)
        if new != text:
            self.changes.append(f"{text.strip()} -> {new.strip()}")
        return new

    def constraint(self, value: str) -> str:
        m = _OFFICIAL_CONSTRAINTS.match(value)
        if not m:
            return self.paths(value)
        lock = self.locks.get(m["version"])
        if lock is None:
            self.changes.append(f"{value}: Airflow {m['version']} is not bundled, "
                                "so its constraints are fetched as written")
            return value
        self.changes.append(f"{value} -> {lock} (the bundled lock for Airflow {m['version']}; "
                            "no network needed)")
        return str(lock)

    def line(self, line: str) -> str:
        body, comment = _split_comment(line)
        stripped = body.strip()
        if not stripped:
            return line
        m = _OPTION.match(stripped)
        if m and m["name"] in _PATH_OPTIONS and m["value"]:
            value = _unquote(m["value"])
            if m["name"] in ("-c", "--constraint"):
                new = self.constraint(value)
            else:
                new = self.paths(value)
            if new == value:
                return line
            sep = "=" if m["sep"] == "=" else " "
            return f"{m['name']}{sep}{_quote(new)}" + (f" {comment.strip()}" if comment else "")
        if m:
            return line  # any other option (--no-index, --index-url, ...) is left to the installer
        new = self.paths(body)
        return new + comment if new != body else line


def plan_install(text: str, airflow_version: str, *, dags_folder: Path, plugins_folder: Path,
                 locks_dir: Path = LOCKS) -> InstallPlan:
    """What to install for `text` (a requirements.txt) in an environment of `airflow_version`.

    Raises KeyError when the version has no bundled lock: every environment runs one.
    """
    locks = bundled_locks(locks_dir)
    lock = locks[airflow_version]
    lock_text = lock.read_text()
    rewriter = _Rewriter(dags_folder, plugins_folder, locks)
    requirements = "\n".join(rewriter.line(line) for line in _logical_lines(text))
    if text.endswith("\n") or not text:
        requirements += "\n"
    pins = lock_pins(lock_text)
    essential = [f"{name}=={pins[name]}" for name in sorted(ESSENTIAL_PACKAGES) if name in pins]
    changes = list(rewriter.changes)
    header = f"# Essential packages of Airflow {airflow_version}'s runtime: never replaced by a requirement.\n"
    constraints = header + "\n".join(essential) + "\n"
    if not has_constraints(text):
        changes.append(f"no --constraint line: the install is constrained by the bundled lock for "
                       f"Airflow {airflow_version}, as MWAA adds its constraints")
        constraints += f"# No --constraint line in requirements.txt: the bundled lock ({lock.name}).\n" + lock_text
    return InstallPlan(requirements=requirements, constraints=constraints, changes=tuple(changes))
