"""Sources of MWAA Serverless on AWS: the users' S3 buckets, and Airdock's artifacts bucket for
snapshots of workflow code (`serverless/snapshots/{workflow}/{version}/...`) and the version
folders the engine runs (`serverless/versions/{dag_id}/...`)."""
from __future__ import annotations

import io
import zipfile
from pathlib import PurePosixPath
from typing import Any

from airdock.core.serverless.code import CodeError, check_code_name, check_size, check_zip_entries
from airdock.core.serverless.ports import SourceError

SNAPSHOTS = "serverless/snapshots"


class S3Sources:
    def __init__(self, artifacts_bucket: str, client: Any = None) -> None:
        if client is None:
            import boto3

            client = boto3.client("s3")
        self.bucket = artifacts_bucket
        self.s3 = client

    def _head(self, bucket: str, key: str, version_id: str | None) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        try:
            return dict(self.s3.head_object(Bucket=bucket, Key=key, **({"VersionId": version_id} if version_id else {})))
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("404", "NoSuchKey", "NotFound", "NoSuchBucket", "NoSuchVersion", "400"):
                raise SourceError(f"s3://{bucket}/{key}" + (f" version {version_id}" if version_id else "")
                                  + " does not exist.") from None
            if code in ("403", "AccessDenied"):
                raise SourceError(f"Airdock may not read s3://{bucket}/{key} (access denied).") from None
            raise

    def read_definition(self, bucket: str, key: str, version_id: str | None, limit: int) -> bytes:
        self._head(bucket, key, version_id)
        body = self.s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{limit - 1}",
                                  **({"VersionId": version_id} if version_id else {}))["Body"]
        return bytes(body.read(limit))

    def snapshot_code(self, bucket: str, key: str, version_id: str | None, workflow_id: str, version: str) -> str:
        head = self._head(bucket, key, version_id)
        try:
            kind = check_code_name(key)
            check_size(int(head["ContentLength"]), key)
        except CodeError as exc:
            raise SourceError(str(exc)) from None
        name = "code.zip" if kind == "zip" else PurePosixPath(key).name
        target = f"{SNAPSHOTS}/{workflow_id}/{version}/{name}"
        if kind == "zip":
            data = self.s3.get_object(Bucket=bucket, Key=key, **({"VersionId": version_id} if version_id else {}))["Body"].read()
            try:
                with zipfile.ZipFile(io.BytesIO(data)) as archive:
                    check_zip_entries(((i.filename, i.file_size) for i in archive.infolist()), key)
            except zipfile.BadZipFile:
                raise SourceError(f"{key} is not a valid .zip file") from None
            except CodeError as exc:
                raise SourceError(str(exc)) from None
            self.s3.put_object(Bucket=self.bucket, Key=target, Body=data, ServerSideEncryption="AES256")
        else:
            source = {"Bucket": bucket, "Key": key, **({"VersionId": version_id} if version_id else {})}
            self.s3.copy_object(Bucket=self.bucket, Key=target, CopySource=source, ServerSideEncryption="AES256")
        return f"s3://{self.bucket}/{target}"

    def delete_snapshots(self, workflow_id: str, version: str | None = None) -> None:
        prefix = f"{SNAPSHOTS}/{workflow_id}/" + (f"{version}/" if version else "")
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": keys})
