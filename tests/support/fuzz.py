"""Schemathesis against a live `airdock serve`, every request SigV4-signed like boto3 signs it.

Shared by tests/e2e/test_fuzz.py (a small seeded run) and bench/fuzz.py (≥ 10 000 requests).
Failures are counted, not raised, so one run reports every kind of problem it met:
- 5xx: any response ≥ 500 (the server must never fail on input);
- schema violations: schemathesis' response checks (status code, content type, headers and body
  against /_airdock/openapi.json);
- inconsistent: after the run, a stored environment that does not validate, is not listed, or
  cannot be read back through the API (a half-created record).
"""
from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import requests
import schemathesis
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from support.live_server import LiveServer

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]
# Names that exist during the run, so generated calls also reach real records (most generated
# names would only ever meet 404).
KNOWN = ("fuzz-a", "fuzz-b", "fuzz-c")
BUCKET = "fuzz-bucket"


class SigV4(requests.auth.AuthBase):
    """Sign the prepared request exactly as it goes on the wire (raw path, query, body)."""

    def __init__(self, key_id: str, secret: str, region: str = "us-east-1") -> None:
        self.credentials = Credentials(key_id, secret)
        self.region = region

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        # Re-encode the query the way botocore encodes boto3's params (RFC 3986, '%20' for a space;
        # requests writes '+'), so the wire form is the canonical form both sides sign.
        parts = urlsplit(request.url)
        if parts.query:
            pairs = parse_qsl(parts.query, keep_blank_values=True)
            query = urlencode(pairs, quote_via=quote, safe="-_.~")
            request.url = urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
        for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Content-SHA256"):
            request.headers.pop(name, None)
        aws = AWSRequest(method=request.method, url=request.url, data=body,
                         headers={k: v for k, v in request.headers.items()
                                  if k.lower() in ("content-type", "host")})
        SigV4Auth(self.credentials, "airflow", self.region).add_auth(aws)
        for name, value in aws.headers.items():
            request.headers[name] = value
        return request


@dataclass
class FuzzReport:
    requests: int = 0
    server_errors: int = 0
    schema_violations: int = 0
    inconsistent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    seconds: float = 0.0
    skipped: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (f"fuzz: requests {self.requests}, 5xx {self.server_errors}, schema violations "
                f"{self.schema_violations}, inconsistent {self.inconsistent}")

    def note(self, text: str) -> None:
        if len(self.examples) < 20:
            self.examples.append(text[:1500])


def seed_state(server: LiveServer) -> None:
    """A bucket whose sources exist and a few environments for generated calls to hit."""
    bucket = server.bucket(BUCKET)
    (bucket / "dags").mkdir(exist_ok=True)
    (bucket / "dags" / "dag.py").write_text("# fuzz\n")
    client = server.client()
    for name in KNOWN:
        client.create_environment(
            Name=name, ExecutionRoleArn="arn:aws:iam::000000000000:role/fuzz",
            SourceBucketArn=f"arn:aws:s3:::{BUCKET}", DagS3Path="dags",
            NetworkConfiguration={"SubnetIds": ["subnet-a", "subnet-b"], "SecurityGroupIds": ["sg-1"]})


def _steer(case: Any, rng: random.Random) -> None:
    """Point some generated calls at existing environments and valid sources, so the fuzzer
    exercises state changes and not only 404s and bucket errors."""
    params = case.path_parameters or {}
    roll = rng.random()
    if "Name" in params and roll < 0.4:
        params["Name"] = rng.choice(KNOWN + ("fuzz-new-" + str(rng.randrange(50)),))
    if "EnvironmentName" in params and roll < 0.4:
        params["EnvironmentName"] = rng.choice(KNOWN)
    if "ResourceArn" in params and roll < 0.4:
        params["ResourceArn"] = f"arn:aws:airflow:us-east-1:000000000000:environment/{rng.choice(KNOWN)}"
    body = case.body
    if isinstance(body, dict) and rng.random() < 0.5:
        if "SourceBucketArn" in body:
            body["SourceBucketArn"] = f"arn:aws:s3:::{BUCKET}"
        if "DagS3Path" in body:
            body["DagS3Path"] = "dags"


def run(server: LiveServer, *, examples_per_operation: int, seed: int,
        modes: tuple[GenerationMode, ...] = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)) -> FuzzReport:
    schema = schemathesis.openapi.from_url(f"{server.endpoint}/_airdock/openapi.json")
    session = requests.Session()
    session.auth = SigV4(*server.credentials())
    report = FuzzReport()
    rng = random.Random(seed)
    started = time.monotonic()
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:
        for mode in modes:
            fixed: dict[str, Any] = {}
            if mode == GenerationMode.POSITIVE and "{ResourceArn}" in operation.path:
                # Hypothesis finds no valid ARN path segment by itself (the pattern needs a '/'):
                # positive tag calls use real ARNs; negative ones still fuzz the parameter.
                fixed["path_parameters"] = {"ResourceArn": f"arn:aws:airflow:us-east-1:000000000000:environment/{KNOWN[0]}"}

            @hypothesis_seed(seed)
            @settings(max_examples=examples_per_operation, deadline=None, database=None, derandomize=False,
                      phases=[Phase.generate], suppress_health_check=list(HealthCheck), print_blob=False)
            @given(case=operation.as_strategy(generation_mode=mode, **fixed))
            def one(case: Any) -> None:
                _steer(case, rng)
                try:
                    response = case.call(base_url=server.endpoint, session=session, timeout=30)
                except requests.RequestException as exc:
                    report.requests += 1
                    report.server_errors += 1
                    report.note(f"{case.method} {case.formatted_path}: connection failed: {exc}")
                    return
                report.requests += 1
                report.statuses[response.status_code] += 1
                if response.status_code == 403:
                    # The root key may do anything: a 403 is the server refusing botocore's own
                    # signature (a SigV4 compatibility bug), reported with the schema violations.
                    report.schema_violations += 1
                    report.note(f"{case.method} {case.formatted_path} query={case.query!r} -> 403 {response.text[:300]}")
                    return
                if response.status_code >= 500:
                    report.server_errors += 1
                    report.note(f"{case.method} {case.formatted_path} body={case.body!r} -> {response.status_code} "
                                f"{response.text[:300]}")
                    return
                try:
                    case.validate_response(response, checks=CHECKS)
                except Exception as exc:  # schemathesis raises one error carrying every failed check
                    report.schema_violations += 1
                    report.note(f"{case.method} {case.formatted_path} body={case.body!r} -> "
                                f"{response.status_code} {response.text[:300]}\n  {exc}")

            try:
                one()
            except Unsatisfiable:
                # e.g. no way to make a negative case for an operation without constrained inputs
                report.skipped.append(f"{operation.method.upper()} {operation.path} ({mode.value})")
    report.inconsistent = check_consistency(server, report)
    report.seconds = time.monotonic() - started
    return report


def check_consistency(server: LiveServer, report: FuzzReport) -> int:
    """Every stored record validates as an Environment, is listed and answers GetEnvironment;
    and everything listed is stored (no half-created or orphaned records)."""
    from airdock.core.models import Environment
    from airdock.local.sqlite_repository import SqliteEnvironmentRepository

    repository = SqliteEnvironmentRepository(Path(server.data_dir) / "state.db")
    stored: list[str] = []
    after = None
    while True:
        names = repository.list_names(100, after)
        if not names:
            break
        stored.extend(names)
        after = names[-1]
    client = server.client()
    listed = [n for page in client.get_paginator("list_environments").paginate() for n in page["Environments"]]
    bad = 0
    if sorted(listed) != sorted(stored):
        bad += 1
        report.note(f"listed {sorted(set(listed) ^ set(stored))} differ from stored")
    for name in stored:
        record = repository.get(name)
        try:
            assert record is not None, "vanished"
            Environment.model_validate(record.environment.model_dump())
            got = client.get_environment(Name=name)["Environment"]
            assert got["Name"] == name and got["Arn"] == record.environment.Arn, got
        except Exception as exc:
            bad += 1
            report.note(f"inconsistent record {name}: {exc}")
    return bad
