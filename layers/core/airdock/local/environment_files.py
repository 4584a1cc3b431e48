"""An environment's own files under `<data-dir>/envs/<Name>/`: its secrets and its ports.

Both are chosen once, at create, and kept: secrets because Airflow stored data with them (the
Fernet key) and processes were given them; ports so the environment answers at the same address
after every restart. Written 0600 from the start: the secrets are never readable by others, not
even briefly.
"""
from __future__ import annotations

import json
import os
import secrets
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from airdock.core.blueprint import SECRET_KEYS, new_secret


class EnvironmentFilesError(Exception):
    pass


def write_private(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=1)
    os.replace(tmp, path)


def pick_free_port(host: str = "127.0.0.1", avoid: set[int] | None = None) -> int:
    """A port nothing listens on now (the kernel's pick), not one of `avoid`."""
    avoid = avoid or set()
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        if port not in avoid:
            return port
    raise EnvironmentFilesError("no free port found")


@dataclass
class Ports:
    web: int
    postgres: int
    worker_log: int
    trigger_log: int
    # The environment's web front (MWAA's web server hostname); 0 in files written before it existed.
    web_front: int = 0


class EnvironmentFiles:
    """secrets.json: the environment's keys (blueprint.SECRET_KEYS, one flat object) plus the
    password of its own PostgreSQL; ports.json: its ports."""

    def __init__(self, env_dir: Path) -> None:
        self.env_dir = env_dir
        self._secrets: dict[str, str] | None = None
        self._ports: Ports | None = None

    @property
    def secrets_path(self) -> Path:
        return self.env_dir / "secrets.json"

    @property
    def secrets(self) -> dict[str, str]:
        if self._secrets is None:
            self._secrets = self._load_or_make_secrets()
        return self._secrets

    @property
    def ports(self) -> Ports:
        if self._ports is None:
            self._ports = self._load_or_pick_ports()
        return self._ports

    def _load_or_make_secrets(self) -> dict[str, str]:
        if not self.secrets_path.is_file():
            made = {key: value for secret in SECRET_KEYS for key, value in new_secret(secret).items()}
            made["db_password"] = secrets.token_hex(20)
            write_private(self.secrets_path, made)
            return made
        loaded: dict[str, str] = json.loads(self.secrets_path.read_text())
        # Environments created before a key existed get it now; existing keys never change.
        missing = {key: make() for keys in SECRET_KEYS.values() for key, make in keys.items() if key not in loaded}
        if missing:
            loaded = {**loaded, **missing}
            write_private(self.secrets_path, loaded)
        return loaded

    def _load_or_pick_ports(self) -> Ports:
        path = self.env_dir / "ports.json"
        taken: set[int] = set()
        if path.is_file():
            ports = Ports(**json.loads(path.read_text()))
            if not ports.web_front:
                taken.update(asdict(ports).values())
                ports.web_front = pick_free_port(avoid=taken)
                write_private(path, asdict(ports))
            return ports

        def pick() -> int:
            p = pick_free_port(avoid=taken)
            taken.add(p)
            return p

        ports = Ports(web=pick(), postgres=pick(), worker_log=pick(), trigger_log=pick(), web_front=pick())
        write_private(path, asdict(ports))
        return ports
