"""Hostile input through the real endpoint: source paths that climb out of the bucket, request
bodies and heads that are too big or too deep. Every refusal is a 4xx in MWAA's error shape."""
from __future__ import annotations

import json
import os
import socket
from typing import Any

import pytest
from botocore.exceptions import ClientError

from e2e.conftest import BUCKET, create_request
from e2e.test_api_boto3 import signed
from support.live_server import LiveServer


def refused(mwaa: Any, **request: Any) -> str:
    with pytest.raises(ClientError) as caught:
        mwaa.create_environment(**request)
    error = caught.value.response["Error"]
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400, caught.value.response
    assert error["Code"] == "ValidationException"
    return str(error["Message"])


@pytest.mark.parametrize("member", ["DagS3Path", "PluginsS3Path", "RequirementsS3Path", "StartupScriptS3Path"])
@pytest.mark.parametrize("key", ["../outside", "dags/../../outside", "/etc/passwd", "..", "dags\\..\\..\\credentials",
                                 "../../credentials"])
def test_given_a_source_path_that_climbs_out_of_the_bucket_then_create_is_refused(
        server: LiveServer, mwaa: Any, member: str, key: str) -> None:
    (server.data_dir / "buckets" / "outside").mkdir(exist_ok=True)
    (server.data_dir / "buckets" / "outside" / "x").write_text("")
    message = refused(mwaa, **create_request(f"esc-{abs(hash((member, key))) % 10**6}", **{member: key}))
    assert member in message and "was not found" in message
    assert refused(mwaa, **create_request("esc-upd", **{member: key}))  # same rule on every path


def test_given_a_bucket_name_like_dotdot_then_the_data_dir_is_not_reachable(server: LiveServer, mwaa: Any) -> None:
    # 'buckets' exists relative to <data-dir>/buckets/.. — the bucket must not be that folder.
    for bucket in ("..", ".", "..."):
        message = refused(mwaa, **create_request("esc-bucket", SourceBucketArn=f"arn:aws:s3:::{bucket}", DagS3Path="buckets"))
        assert "SourceBucketArn" in message


def test_given_a_symlink_in_the_bucket_pointing_outside_then_it_is_not_a_source(server: LiveServer, mwaa: Any) -> None:
    link = server.bucket(BUCKET) / "escape"
    if not link.is_symlink():
        os.symlink(server.data_dir, link)
    assert "DagS3Path" in refused(mwaa, **create_request("esc-link", DagS3Path="escape"))
    assert "RequirementsS3Path" in refused(mwaa, **create_request("esc-link", RequirementsS3Path="escape/credentials"))


def test_given_an_oversized_body_then_413_validation_exception(server: LiveServer) -> None:
    response = signed(server, "PUT", "/environments/big", b" " * (6 * 1024 * 1024 + 1))
    assert response.status_code == 413
    assert response.headers["x-amzn-ErrorType"] == "ValidationException"
    assert "exceeds" in response.json()["message"]


@pytest.mark.parametrize("body", [b'{"a":' * 100_000 + b"1" + b"}" * 100_000, b"[" * 200_000 + b"]" * 200_000,
                                  b"\xc3\x28\xff", b"[1, 2, 3]", b"null"])
def test_given_a_deep_binary_or_non_object_body_then_400_not_500(server: LiveServer, body: bytes) -> None:
    response = signed(server, "PUT", "/environments/bomb", body)
    assert response.status_code == 400, response.text
    assert response.headers["x-amzn-ErrorType"] == "ValidationException"


def test_given_a_huge_but_shallow_body_then_it_is_refused_in_bounded_time(server: LiveServer) -> None:
    body = json.dumps({**create_request("wide"), "Tags": {f"k{i}": "v" for i in range(100_000)}}).encode()
    response = signed(server, "PUT", "/environments/wide", body)
    assert response.status_code == 400 and "'tags'" in response.json()["message"], response.text[:300]


def _send_until_answered(port: int, head: bytes) -> bytes:
    """Send `head` in small chunks like a slow client, stop as soon as the server answers (it
    closes the connection after a refusal; writing on would only earn a reset) and return the
    start of the answer."""
    import select

    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        for offset in range(0, len(head), 8192):
            if select.select([sock], [], [], 0)[0]:
                break
            try:
                sock.sendall(head[offset:offset + 8192])
            except OSError:
                break
        return sock.recv(64)


def test_given_a_huge_header_or_too_many_headers_then_431_and_the_server_keeps_serving(
        server: LiveServer, mwaa: Any) -> None:
    one_huge = b"GET /environments HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (1024 * 1024)
    assert _send_until_answered(server.port, one_huge).startswith(b"HTTP/1.1 431")
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(20_000))
    assert _send_until_answered(server.port, b"GET /environments HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n") \
        .startswith(b"HTTP/1.1 431")
    long_url = b"GET /environments?" + b"a=b&" * 50_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    # httptools' own URL limit may answer first (400); either way the request is refused early.
    assert _send_until_answered(server.port, long_url)[:12] in (b"HTTP/1.1 431", b"HTTP/1.1 400")
    assert isinstance(mwaa.list_environments()["Environments"], list)


def test_given_a_plugins_zip_with_zip_slip_entries_then_create_fails_naming_the_entry(tmp_path: Any) -> None:
    """Provisioning server, but no Airflow runs: the archive is refused in the first step."""
    import time
    import zipfile

    live = LiveServer(tmp_path / "data", provision=True, env={"AIRDOCK_AUTOSCALER": "off"}).start()
    try:
        bucket = live.bucket(BUCKET)
        (bucket / "dags").mkdir(exist_ok=True)
        with zipfile.ZipFile(bucket / "evil.zip", "w") as archive:
            archive.writestr("ok.py", "")
            archive.writestr("../../../../escaped.py", "print('owned')")
        mwaa = live.client()
        mwaa.create_environment(**create_request("slip", PluginsS3Path="evil.zip"))
        deadline = time.monotonic() + 120
        env: dict[str, Any] = {}
        while time.monotonic() < deadline:
            env = mwaa.get_environment(Name="slip")["Environment"]
            if env["Status"] != "CREATING":
                break
            time.sleep(0.5)
        assert env["Status"] == "CREATE_FAILED", env
        error = env["LastUpdate"]["Error"]
        assert error["ErrorCode"] == "PLUGINS_INVALID"
        assert "../../../../escaped.py" in error["ErrorMessage"] and "outside the plugins folder" in error["ErrorMessage"]
        assert not list(tmp_path.rglob("escaped.py"))
    finally:
        live.stop()
