"""Buckets port on S3. Versioned objects are honoured: a version id must exist for that key."""
from __future__ import annotations

from typing import Any

import boto3
from botocore.exceptions import ClientError

_MISSING = {"404", "403", "NoSuchBucket", "NoSuchKey", "NoSuchVersion", "NotFound", "AccessDenied", "InvalidArgument"}


class S3Buckets:
    def __init__(self, client: Any | None = None) -> None:
        self.s3 = client or boto3.client("s3")

    def bucket_exists(self, bucket: str) -> bool:
        try:
            self.s3.head_bucket(Bucket=bucket)
            return True
        except ClientError as exc:
            if exc.response["Error"]["Code"] in _MISSING:
                return False
            raise

    def prefix_exists(self, bucket: str, prefix: str) -> bool:
        try:
            listing = self.s3.list_objects_v2(Bucket=bucket, Prefix=prefix.rstrip("/"), MaxKeys=1)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in _MISSING:
                return False
            raise
        return listing.get("KeyCount", 0) > 0

    def object_exists(self, bucket: str, key: str, version: str | None = None) -> bool:
        args: dict[str, str] = {"Bucket": bucket, "Key": key}
        if version:
            args["VersionId"] = version
        try:
            self.s3.head_object(**args)
            return True
        except ClientError as exc:
            if exc.response["Error"]["Code"] in _MISSING:
                return False
            raise
