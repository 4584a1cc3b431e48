"""Local stand-in for S3 source buckets: `arn:aws:s3:::NAME` is the folder `<data-dir>/buckets/NAME/`.

Object versions: a local folder keeps one version of each file. A version id given by the user is
checked against `<key>.versions/<id>` when present, so pinned versions can be kept side by side.
"""
from __future__ import annotations

from pathlib import Path


class LocalBuckets:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, bucket: str, key: str = "", version: str | None = None) -> Path:
        base = (self.root / bucket).resolve()
        # The bucket is one folder directly under the buckets root: names like '..' or '.'
        # (which MWAA's SourceBucketArn pattern lets through) must not reach the data dir.
        if base.parent != self.root.resolve() or bucket.startswith("."):
            raise ValueError(f"bucket {bucket!r} is not a bucket name")
        target = (base / key).resolve() if key else base
        # Keys that climb out of the bucket (../) are refused here as well as in the domain.
        if target != base and base not in target.parents:
            raise ValueError(f"key {key!r} escapes bucket {bucket!r}")
        if version:
            return target.parent / f"{target.name}.versions" / version
        return target

    def bucket_exists(self, bucket: str) -> bool:
        try:
            return self.path(bucket).is_dir()
        except ValueError:
            return False

    def prefix_exists(self, bucket: str, prefix: str) -> bool:
        try:
            target = self.path(bucket, prefix)
        except ValueError:
            return False
        return target.exists()

    def object_exists(self, bucket: str, key: str, version: str | None = None) -> bool:
        try:
            target = self.path(bucket, key)
        except ValueError:
            return False
        if not target.is_file():
            return False
        return self.path(bucket, key, version).is_file() if version else True
