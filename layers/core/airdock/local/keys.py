"""Access keys besides the root key: `<data-dir>/keys.json` (mode 0600), managed by `airdock keys`.

Each key belongs to a named IAM-style user (`arn:aws:iam::{account}:user/{name}`) and carries an
optional identity policy (core/authorization.py). A key without a policy may do nothing: non-root
keys are denied by default, as an IAM user with no policy is. The root key (credentials file or
AIRDOCK_ACCESS_KEY_ID) is not in this file and is allowed everything.

`airdock keys` edits the file directly (no server needed); a running server sees changes on its
next request (it re-reads the file when its mtime/size change). Writers take an exclusive lock so
two concurrent `airdock keys create` cannot lose each other's key. Secrets are printed once by
`keys create` and are never logged.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airdock.core.authorization import Policy, parse_policy
from airdock.core.errors import ValidationError
from airdock.local.credentials import _new_key_id, _new_secret, write_private

log = logging.getLogger("airdock.keys")

FILE_NAME = "keys.json"
# IAM user names: 1..64 of [\w+=,.@-].
USER_NAME = re.compile(r"[\w+=,.@-]{1,64}")


@dataclass(frozen=True)
class ManagedKey:
    access_key_id: str
    secret_access_key: str
    user_name: str
    principal_arn: str
    created: str
    policy: Policy | None

    @property
    def policies(self) -> list[Policy]:
        return [self.policy] if self.policy is not None else []

    def public(self) -> dict[str, Any]:
        """Everything but the secret (for `keys list`)."""
        return {"AccessKeyId": self.access_key_id, "UserName": self.user_name, "Arn": self.principal_arn,
                "CreateDate": self.created, "Policy": self.policy.model_dump(exclude_none=True) if self.policy else None}


class KeysFile:
    def __init__(self, data_dir: Path, account_id: str) -> None:
        self.path = data_dir / FILE_NAME
        self.account_id = account_id
        self._cache: tuple[tuple[int, int], dict[str, ManagedKey]] | None = None
        self._lock = threading.Lock()

    # ---- reading (the server, per request) ------------------------------------------------------

    def keys(self) -> dict[str, ManagedKey]:
        """Keys by access key id; re-read only when the file changed (a stat per call)."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return {}
        stamp = (st.st_mtime_ns, st.st_size)
        with self._lock:
            if self._cache is not None and self._cache[0] == stamp:
                return self._cache[1]
        keys = self._parse(self._read())
        with self._lock:
            self._cache = (stamp, keys)
        return keys

    def get(self, access_key_id: str) -> ManagedKey | None:
        return self.keys().get(access_key_id)

    def _read(self, *, strict: bool = False) -> list[dict[str, Any]]:
        """The stored entries. A file that is not Airdock's JSON reads as no keys for the server
        (deny, don't guess); `strict` (a writer) refuses it, since writing would erase it."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except ValueError as exc:
            if strict:
                raise ValidationError(f"{self.path} is not valid JSON ({exc}); fix or remove it: "
                                      "it is not overwritten.") from None
            log.error("%s is not valid JSON; no managed key is accepted until it is fixed", self.path)
            return []
        entries = data.get("Keys") if isinstance(data, dict) else None
        if strict and not isinstance(entries, list):
            raise ValidationError(f'{self.path} does not hold {{"Keys": [...]}}; fix or remove it: it is not overwritten.')
        return entries if isinstance(entries, list) else []

    def _parse(self, entries: list[dict[str, Any]]) -> dict[str, ManagedKey]:
        keys: dict[str, ManagedKey] = {}
        for entry in entries:
            try:
                key_id, secret, user = entry["AccessKeyId"], entry["SecretAccessKey"], entry["UserName"]
            except (KeyError, TypeError):
                continue
            policy: Policy | None = None
            if entry.get("Policy") is not None:
                try:
                    policy = parse_policy(entry["Policy"])
                except ValidationError as exc:
                    # Deny everything rather than guess: the key id is named, never its secret.
                    log.error("key %s has an invalid policy (denied everything): %s", key_id, exc.message)
                    policy = None
            keys[key_id] = ManagedKey(key_id, secret, user, self.principal(user), str(entry.get("CreateDate", "")),
                                      policy)
        return keys

    def principal(self, user_name: str) -> str:
        return f"arn:aws:iam::{self.account_id}:user/{user_name}"

    # ---- writing (`airdock keys`) ---------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[list[dict[str, Any]]]:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # the data dir holds secrets
        lock_path = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            entries = self._read(strict=True)
            yield entries
            write_private(self.path, json.dumps({"Keys": entries}, indent=1) + "\n")
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def create(self, user_name: str, policy_document: Any | None = None) -> ManagedKey:
        if not USER_NAME.fullmatch(user_name):
            raise ValidationError("The user name must be 1 to 64 characters of letters, digits and +=,.@_-.")
        policy = parse_policy(policy_document) if policy_document is not None else None
        key_id, secret = _new_key_id(), _new_secret()
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with self._locked() as entries:
            entries.append({"AccessKeyId": key_id, "SecretAccessKey": secret, "UserName": user_name,
                            "CreateDate": created,
                            "Policy": policy.model_dump(exclude_none=True) if policy else None})
        return ManagedKey(key_id, secret, user_name, self.principal(user_name), created, policy)

    def delete(self, access_key_id: str) -> bool:
        with self._locked() as entries:
            kept = [e for e in entries if e.get("AccessKeyId") != access_key_id]
            found = len(kept) != len(entries)
            entries[:] = kept
        return found

    def list(self) -> list[ManagedKey]:
        return sorted(self.keys().values(), key=lambda k: (k.user_name, k.created))
