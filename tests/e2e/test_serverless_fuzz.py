"""Specification: no input makes the `mwaa-serverless` API answer 5xx.

Bodies are generated from botocore's own shapes for every operation: members present or not,
each with a value of its shape or of any other JSON type; the requests are signed like boto3's
and sent raw. Every answer must be a 2xx or a modeled 4xx error (`__type` set)."""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.live_server import LiveServer
from support.serverless import EMPTY, ROLE, put
from support.service_model_probe import load_service_model

MODEL = load_service_model("mwaa-serverless", "2024-07-26")
BUCKET = "fuzz"
ANY_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
                        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                        max_leaves=8)


def of_shape(name: str, depth: int = 0) -> st.SearchStrategy[Any]:
    spec = MODEL["shapes"][name]
    kind = spec["type"]
    if depth > 4:
        return ANY_JSON
    if kind == "structure" and not spec.get("document"):
        members = {m: st.one_of(of_shape(r["shape"], depth + 1), ANY_JSON) for m, r in spec["members"].items()}
        return st.fixed_dictionaries({}, optional=members)
    if kind == "string":
        if "enum" in spec:
            return st.sampled_from(spec["enum"]) | st.text(max_size=10)
        return st.text(min_size=spec.get("min", 0), max_size=min(spec.get("max", 40), 300)) | st.sampled_from([
            ROLE, f"arn:aws:airflow-serverless:us-east-1:000000000000:workflow/flow-{'a' * 10}", BUCKET, "flow.yaml"])
    if kind == "integer":
        return st.integers(min_value=-10, max_value=100000)
    if kind == "boolean":
        return st.booleans()
    if kind == "timestamp":
        return st.text(max_size=20)
    if kind == "list":
        return st.lists(of_shape(spec["member"]["shape"], depth + 1), max_size=4)
    if kind == "map":
        return st.dictionaries(st.text(max_size=20), of_shape(spec["value"]["shape"], depth + 1), max_size=4)
    return ANY_JSON


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path_factory.mktemp("serverless-fuzz") / "data").start()
    put(live.bucket(BUCKET), "flow.yaml", f"flow:\n  tasks:\n    t:\n      operator: {EMPTY}\n")
    yield live
    live.stop()


def send(server: LiveServer, operation: str, body: bytes) -> requests.Response:
    key, secret = server.credentials()
    request = AWSRequest(method="POST", url=server.endpoint + "/", data=body, headers={
        "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": f"AmazonMWAAServerless.{operation}"})
    SigV4Auth(Credentials(key, secret), "airflow-serverless", "us-east-1").add_auth(request)
    return requests.post(server.endpoint + "/", data=body, headers=dict(request.headers), timeout=60)


@pytest.mark.parametrize("operation", sorted(MODEL["operations"]))
def test_generated_requests_never_get_a_server_error(server: LiveServer, operation: str) -> None:
    shape = MODEL["operations"][operation]["input"]["shape"]

    @settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(body=of_shape(shape) | ANY_JSON)
    def check(body: Any) -> None:
        answer = send(server, operation, json.dumps(body).encode())
        assert answer.status_code < 500, (body, answer.text)
        if answer.status_code >= 400:
            assert answer.json()["__type"] in MODEL["shapes"] or answer.json()["__type"].endswith("Exception")

    check()
    assert send(server, operation, b"\xff\xfe not json").status_code == 400
    assert server.process is not None and server.process.poll() is None
