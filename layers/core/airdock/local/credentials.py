"""Access keys for the local endpoint.

The root key comes from AIRDOCK_ACCESS_KEY_ID / AIRDOCK_SECRET_ACCESS_KEY when set; otherwise it is
generated on first start and kept in `<data-dir>/credentials` (AWS credentials-file format,
profile `airdock`, mode 0600) so the AWS CLI and boto3 can use it with `--profile airdock`.
"""
from __future__ import annotations

import configparser
import os
import secrets
import string
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airdock.core.authorization import Policy
    from airdock.core.ports import Caller

PROFILE = "airdock"


@dataclass(frozen=True)
class AccessKey:
    access_key_id: str
    secret_access_key: str
    principal_arn: str


def _new_key_id() -> str:
    alphabet = string.ascii_uppercase + "234567"
    return "AKIA" + "".join(secrets.choice(alphabet) for _ in range(16))


def _new_secret() -> str:
    alphabet = string.ascii_letters + string.digits + "+/"
    return "".join(secrets.choice(alphabet) for _ in range(40))


def write_private(path: Path, text: str) -> None:
    """Create or replace a file readable by its owner only — it never exists with wider rights."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


class KeyStore:
    def __init__(self, data_dir: Path, account_id: str, root: tuple[str | None, str | None] = (None, None)) -> None:
        """`root`: the root key's id and secret when the settings give them (AIRDOCK_ACCESS_KEY_ID,
        AIRDOCK_SECRET_ACCESS_KEY); otherwise it is kept in (or made into) `data_dir/credentials`."""
        from airdock.local.keys import KeysFile  # keys.py builds on this module's helpers

        self.given_root = root
        self.path = data_dir / "credentials"
        self.account_id = account_id
        self.created = False
        self.from_environment = False  # the root key came from AIRDOCK_*: no credentials file is written
        self.root = self._load_root()
        # Keys made with `airdock keys create` (keys.json), each with its own policy.
        self.managed = KeysFile(data_dir, account_id)

    @property
    def root_principal(self) -> str:
        return f"arn:aws:iam::{self.account_id}:root"

    def _load_root(self) -> AccessKey:
        key_id, secret = self.given_root
        if key_id and secret:
            self.from_environment = True
            return AccessKey(key_id, secret, self.root_principal)
        if self.path.exists():
            parser = configparser.ConfigParser()
            parser.read(self.path, encoding="utf-8")
            if parser.has_section(PROFILE):
                section = parser[PROFILE]
                return AccessKey(section["aws_access_key_id"], section["aws_secret_access_key"], self.root_principal)
        key = AccessKey(_new_key_id(), _new_secret(), self.root_principal)
        write_private(
            self.path,
            f"[{PROFILE}]\naws_access_key_id = {key.access_key_id}\naws_secret_access_key = {key.secret_access_key}\n",
        )
        self.created = True
        return key

    def lookup(self, access_key_id: str) -> AccessKey | None:
        if access_key_id == self.root.access_key_id:
            return self.root
        managed = self.managed.get(access_key_id)
        if managed is None:
            return None
        return AccessKey(managed.access_key_id, managed.secret_access_key, managed.principal_arn)

    def policies_for(self, caller: Caller) -> list[Policy] | None:
        """The authorization PolicySource: None (unrestricted) for the root key, the key's
        policies for a managed key, and nothing (deny everything) for any other caller."""
        if caller.access_key_id == self.root.access_key_id:
            return None
        managed = self.managed.get(caller.access_key_id)
        return managed.policies if managed is not None else []

    def secret_for(self, access_key_id: str) -> str | None:
        key = self.lookup(access_key_id)
        return key.secret_access_key if key else None
