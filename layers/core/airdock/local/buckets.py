"""Local stand-in for S3 source buckets: `arn:aws:s3:::NAME` is the folder `<data-dir>/buckets/NAME/`.

Object versions: a local folder keeps one version of each file. A version id given by the user is
checked against `<key>.versions/<id>` when present, so pinned versions can be kept side by side.
"""
from __future__ import annotations

import os
from pathlib import Path


class LocalBuckets:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._real_root: str | None = None

    def path(self, bucket: str, key: str = "", version: str | None = None) -> Path:
        # os.path on strings, and the root resolved once: pathlib's resolve() cost two fifths of
        # a CreateEnvironment (bench/soak.py). The checks are the same.
        root = self._real_root or os.path.realpath(self.root)
        if self._real_root is None and os.path.isdir(root):  # kept once the folder exists
            self._real_root = root
        base = os.path.realpath(os.path.join(root, bucket))
        # The bucket is one folder directly under the buckets root: names like '..' or '.'
        # (which MWAA's SourceBucketArn pattern lets through) must not reach the data dir.
        if os.path.dirname(base) != root or bucket.startswith("."):
            raise ValueError(f"bucket {bucket!r} is not a bucket name")
        target = os.path.realpath(os.path.join(base, key)) if key else base
        # Keys that climb out of the bucket (../) are refused here as well as in the domain.
        if target != base and not target.startswith(base + os.sep):
            raise ValueError(f"key {key!r} escapes bucket {bucket!r}")
        if version:
            return Path(os.path.dirname(target), f"{os.path.basename(target)}.versions", version)
        return Path(target)

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
