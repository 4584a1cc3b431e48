"""Sources of MWAA Serverless locally: bucket folders (`<data-dir>/buckets/NAME/`, as for MWAA)
and Airdock's snapshots of workflow code under `<data-dir>/serverless/snapshots/`."""
from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

from airdock.core.serverless.code import CodeError, check_code_name, check_size, check_zip_entries
from airdock.core.serverless.ports import SourceError
from airdock.local.buckets import LocalBuckets


class LocalSources:
    def __init__(self, buckets: LocalBuckets, snapshots: Path) -> None:
        self.buckets = buckets
        self.snapshots = snapshots

    def _object(self, bucket: str, key: str, version_id: str | None) -> Path:
        try:
            if not self.buckets.bucket_exists(bucket):
                raise SourceError(f"Bucket {bucket} does not exist.")
            path = self.buckets.path(bucket, key, version_id)
        except ValueError as exc:
            raise SourceError(str(exc)) from None
        if not path.is_file():
            raise SourceError(f"s3://{bucket}/{key}" + (f" version {version_id}" if version_id else "")
                              + " does not exist.")
        return path

    def read_definition(self, bucket: str, key: str, version_id: str | None, limit: int) -> bytes:
        path = self._object(bucket, key, version_id)
        with open(path, "rb") as handle:
            data = handle.read(limit)
        return data

    def snapshot_code(self, bucket: str, key: str, version_id: str | None, workflow_id: str, version: str) -> str:
        source = self._object(bucket, key, version_id)
        try:
            kind = check_code_name(key)
            check_size(source.stat().st_size, key)
        except CodeError as exc:
            raise SourceError(str(exc)) from None
        folder = self.snapshots / workflow_id / version
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / (f"code.{kind}" if kind == "zip" else Path(key).name)
        tmp = target.with_name(target.name + ".tmp")
        shutil.copyfile(source, tmp)
        if kind == "zip":
            try:
                with zipfile.ZipFile(tmp) as archive:
                    check_zip_entries(((i.filename, i.file_size) for i in archive.infolist()), key)
            except zipfile.BadZipFile:
                tmp.unlink(missing_ok=True)
                raise SourceError(f"{key} is not a valid .zip file") from None
            except CodeError as exc:
                tmp.unlink(missing_ok=True)
                raise SourceError(str(exc)) from None
        os.replace(tmp, target)
        return str(target)

    def delete_snapshots(self, workflow_id: str, version: str | None = None) -> None:
        folder = self.snapshots / workflow_id
        shutil.rmtree(folder / version if version else folder, ignore_errors=True)
