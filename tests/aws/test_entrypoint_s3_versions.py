"""images/airflow/entrypoint.py fetches pinned S3 object versions (PluginsS3ObjectVersion,
RequirementsS3ObjectVersion, StartupScriptS3ObjectVersion) — under moto S3 with a versioned bucket."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from airdock_runtime import entrypoint as entrypoint_module


@pytest.fixture
def entrypoint() -> Any:
    return entrypoint_module


def _zip(name: str, text: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(name, text)
    return buf.getvalue()


@pytest.fixture
def bucket(aws_credentials: None, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.delenv("AIRDOCK_S3_ENDPOINT_URL", raising=False)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="dags-bucket")
        s3.put_bucket_versioning(Bucket="dags-bucket", VersioningConfiguration={"Status": "Enabled"})
        yield s3


def test_the_pinned_version_is_fetched_not_the_latest(entrypoint: Any, bucket: Any, tmp_path: Path) -> None:
    first = bucket.put_object(Bucket="dags-bucket", Key="scripts/startup.sh", Body=b"echo v1\n")["VersionId"]
    bucket.put_object(Bucket="dags-bucket", Key="scripts/startup.sh", Body=b"echo v2\n")
    pinned = entrypoint.fetch_file("s3://dags-bucket/scripts/startup.sh", tmp_path / "a", first)
    assert pinned.read_text() == "echo v1\n"
    latest = entrypoint.fetch_file("s3://dags-bucket/scripts/startup.sh", tmp_path / "b")
    assert latest.read_text() == "echo v2\n"


def test_prepare_unpacks_the_pinned_plugins_zip(entrypoint: Any, bucket: Any, tmp_path: Path) -> None:
    old = bucket.put_object(Bucket="dags-bucket", Key="plugins.zip", Body=_zip("old_plugin.py", "X = 1\n"))["VersionId"]
    bucket.put_object(Bucket="dags-bucket", Key="plugins.zip", Body=_zip("new_plugin.py", "X = 2\n"))
    env = {"AIRFLOW_HOME": str(tmp_path / "home"), "AIRDOCK_PLUGINS_ZIP": "s3://dags-bucket/plugins.zip",
           "AIRDOCK_PLUGINS_ZIP_VERSION": old}
    entrypoint.prepare(env, once=True)
    assert sorted(p.name for p in (tmp_path / "home" / "plugins").iterdir()) == ["old_plugin.py"]


def test_a_version_on_a_local_path_is_ignored(entrypoint: Any, tmp_path: Path) -> None:
    script = tmp_path / "startup.sh"
    script.write_text("true\n")
    assert entrypoint.fetch_file(str(script), tmp_path / "x", "3HL4kqtJlcpXroDTDmJ") == script
