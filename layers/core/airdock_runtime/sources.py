"""The environment's code from its source, as MWAA brings it into each container: the DAG folder
mirrored (and kept in step in the background), plugins.zip unpacked, single files (requirements,
startup script) fetched. A source is a local path (local mode: the bucket is a folder) or an
s3:// URL (AWS; boto3 is imported only then)."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import zipfile
from pathlib import Path
from typing import Any

from airdock_runtime.errors import EntrypointError, log

_SKIP_NAMES = {"__pycache__"}
_TMP_SUFFIX = ".airdock-tmp"


def _s3_client() -> Any:
    try:
        import boto3  # optional: only S3 sources need it
    except ImportError as exc:  # pragma: no cover - depends on the image
        raise EntrypointError("an s3:// source needs boto3 installed") from exc
    return boto3.client("s3", endpoint_url=os.environ.get("AIRDOCK_S3_ENDPOINT_URL") or None)


def _split_s3(url: str) -> tuple[str, str]:
    rest = url[len("s3://"):]
    bucket, _, key = rest.partition("/")
    return bucket, key


def fetch_file(source: str, dest_dir: Path, version: str | None = None) -> Path:
    """A local copy of a single file given as a path or s3:// URL; `version` pins the S3 object
    version (MWAA's *S3ObjectVersion parameters)."""
    if source.startswith("s3://"):
        bucket, key = _split_s3(source)
        dest_dir.mkdir(parents=True, exist_ok=True)
        target = dest_dir / Path(key).name
        extra = {"VersionId": version} if version else None
        _s3_client().download_file(bucket, key, str(target), ExtraArgs=extra)
        return target
    path = Path(source)
    if not path.is_file():
        raise EntrypointError(f"{source}: no such file")
    return path


def _atomic_copy(src: Path, dest: Path) -> None:
    # Write beside the target, then rename: a reader (the DAG processor) sees the old or the new
    # file, never half of one; the temporary name does not look like a DAG file.
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}{_TMP_SUFFIX}")
    shutil.copy2(src, tmp)
    os.replace(tmp, dest)


def _walk_files(root: Path) -> dict[str, os.stat_result]:
    files: dict[str, os.stat_result] = {}
    if not root.is_dir():
        return files
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in _SKIP_NAMES]
        for name in filenames:
            if name.endswith(_TMP_SUFFIX) or name.endswith(".pyc"):
                continue
            full = Path(dirpath) / name
            try:
                files[str(full.relative_to(root))] = full.stat()
            except FileNotFoundError:
                continue
    return files


def sync_local_dir(source: Path, dest: Path) -> int:
    """Mirror `source` into `dest` by size and mtime; returns the number of changes."""
    if not source.is_dir():
        raise EntrypointError(f"DAG source {source} is not a directory")
    dest.mkdir(parents=True, exist_ok=True)
    src_files = _walk_files(source)
    dst_files = _walk_files(dest)
    changes = 0
    for rel, st in src_files.items():
        cur = dst_files.get(rel)
        if cur is None or cur.st_size != st.st_size or cur.st_mtime_ns != st.st_mtime_ns:
            try:
                _atomic_copy(source / rel, dest / rel)
                changes += 1
            except FileNotFoundError:
                continue  # deleted while we looked
    for rel in dst_files.keys() - src_files.keys():
        try:
            (dest / rel).unlink()
            changes += 1
        except FileNotFoundError:
            pass
    _remove_empty_dirs(dest)
    return changes


def _remove_empty_dirs(root: Path) -> None:
    for dirpath, _dirnames, _filenames in os.walk(root, topdown=False):
        p = Path(dirpath)
        if p == root or p.name in _SKIP_NAMES:
            continue
        try:
            entries = list(p.iterdir())
            if not entries or all(e.name in _SKIP_NAMES for e in entries):
                shutil.rmtree(p, ignore_errors=True)
        except FileNotFoundError:
            pass


def sync_s3_prefix(url: str, dest: Path) -> int:
    """Mirror s3://bucket/prefix into `dest` by ETag; state kept beside the folder."""
    bucket, prefix = _split_s3(url)
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    client = _s3_client()
    dest.mkdir(parents=True, exist_ok=True)
    state_file = dest.parent / f".{dest.name}.s3state.json"
    try:
        state: dict[str, str] = json.loads(state_file.read_text())
    except (OSError, ValueError):
        state = {}
    seen: dict[str, str] = {}
    changes = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            rel = obj["Key"][len(prefix):]
            if not rel or rel.endswith("/"):
                continue
            target = (dest / rel).resolve()
            if not str(target).startswith(str(dest.resolve()) + os.sep):
                log(f"skipping S3 key escaping the DAG folder: {obj['Key']}")
                continue
            seen[rel] = obj["ETag"]
            if state.get(rel) != obj["ETag"] or not target.exists():
                tmp = target.with_name(f".{target.name}.{os.getpid()}{_TMP_SUFFIX}")
                target.parent.mkdir(parents=True, exist_ok=True)
                client.download_file(bucket, obj["Key"], str(tmp))
                os.replace(tmp, target)
                changes += 1
    for rel in state.keys() - seen.keys():
        (dest / rel).unlink(missing_ok=True)
        changes += 1
    _remove_empty_dirs(dest)
    state_file.write_text(json.dumps(seen))
    return changes


def sync_dags(source: str, dest: Path) -> int:
    if source.startswith("s3://"):
        return sync_s3_prefix(source, dest)
    return sync_local_dir(Path(source), dest)


class DagSyncer(threading.Thread):
    """Keeps the DAG folder in step with its source while the component runs."""

    def __init__(self, source: str, dest: Path, interval_s: float) -> None:
        super().__init__(name="dag-sync", daemon=True)
        self.source, self.dest, self.interval_s = source, dest, interval_s
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval_s):
            try:
                n = sync_dags(self.source, self.dest)
                if n:
                    log(f"DAG sync: {n} change(s) from {self.source}")
            except Exception as exc:  # a flaky source must not take the component down
                log(f"DAG sync failed (will retry): {exc}")


def unpack_plugins(zip_path: Path, dest: Path) -> int:
    """Replace `dest` with the zip's content; refuse entries that would land outside it."""
    root = dest.resolve()
    with zipfile.ZipFile(zip_path) as zf:
        members = zf.infolist()
        for m in members:
            target = (root / m.filename).resolve()
            if m.filename.startswith("/") or (target != root and not str(target).startswith(str(root) + os.sep)):
                raise EntrypointError(
                    f"plugins.zip entry {m.filename!r} would be written outside the plugins folder; "
                    "refusing the archive")
        staging = Path(tempfile.mkdtemp(prefix=".plugins-", dir=root.parent))
        try:
            zf.extractall(staging)
            shutil.rmtree(root, ignore_errors=True)
            os.replace(staging, root)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return len(members)
