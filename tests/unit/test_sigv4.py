"""Specification of server-side SigV4 verification, checked against what botocore really signs.

Every positive case is signed by botocore itself (SigV4Auth / SigV4QueryAuth, or a real boto3
``mwaa`` client whose request is captured just before it would hit the network), so these tests
fail if our canonicalisation drifts from the client's.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote, urlsplit

import boto3
import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.config import Config
from botocore.credentials import Credentials

from airdock.local.sigv4 import (
    INCOMPLETE_SIGNATURE,
    INVALID_SIGNATURE,
    MISSING_AUTHENTICATION_TOKEN,
    UNRECOGNIZED_CLIENT,
    SignedIdentity,
    SigV4Error,
    verify_request,
)

ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
REGION = "us-east-1"
ENDPOINT = "http://127.0.0.1:8787"
ARN = "arn:aws:airflow:us-east-1:000000000000:environment/MyEnv"
MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)


@dataclass(frozen=True)
class Wire:
    """A request exactly as the ASGI server would see it."""

    method: str
    raw_path: str
    query_string: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    @property
    def signed_at(self) -> datetime:
        return datetime.strptime(self.header("x-amz-date"), "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)

    def header(self, name: str) -> str:
        return next(value for key, value in self.headers if key.lower() == name)

    def with_header(self, name: str, value: str | None) -> Wire:
        kept = tuple((k, v) for k, v in self.headers if k.lower() != name.lower())
        return replace(self, headers=kept if value is None else kept + ((name, value),))


def secrets(access_key_id: str) -> str | None:
    return {ACCESS_KEY: SECRET_KEY}.get(access_key_id)


def wire_from(method: str, url: str, headers: list[tuple[str, str | bytes]], body: bytes | None) -> Wire:
    parts = urlsplit(url)
    # Prepared botocore requests hold header values as bytes; the ASGI layer decodes them as latin-1.
    headers = [(name, value.decode("latin-1") if isinstance(value, bytes) else value) for name, value in headers]
    # http.client adds Host from the URL after botocore signed it; so must we.
    if not any(name.lower() == "host" for name, _ in headers):
        headers = [*headers, ("Host", parts.netloc)]
    return Wire(method, parts.path, parts.query, tuple(headers), body or b"")


def sign(
    method: str,
    url: str,
    *,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    params: list[tuple[str, str]] | None = None,
    service: str = "airflow",
    credentials: Credentials | None = None,
    context: dict[str, Any] | None = None,
) -> Wire:
    request = AWSRequest(method=method, url=url, data=body, headers=headers or {}, params=params or {})
    request.context.update(context or {})
    SigV4Auth(credentials or Credentials(ACCESS_KEY, SECRET_KEY), service, REGION).add_auth(request)
    prepared = request.prepare()
    # Build headers from the unprepared request: it keeps repeated headers, the prepared one folds them.
    return wire_from(prepared.method, prepared.url, list(request.headers.items()), prepared.body)


def presign(method: str, url: str, *, expires: int = 300) -> Wire:
    request = AWSRequest(method=method, url=url)
    SigV4QueryAuth(Credentials(ACCESS_KEY, SECRET_KEY), "airflow", REGION, expires=expires).add_auth(request)
    prepared = request.prepare()
    return wire_from(prepared.method, prepared.url, list(prepared.headers.items()), prepared.body)


def verify(wire: Wire, *, now: datetime | None = None) -> SignedIdentity:
    return verify_request(
        method=wire.method,
        raw_path=wire.raw_path,
        query_string=wire.query_string,
        headers=wire.headers,
        body=wire.body,
        secret_for=secrets,
        now=now or datetime.now(timezone.utc),
    )


def rejection(wire: Wire, *, now: datetime | None = None) -> SigV4Error:
    with pytest.raises(SigV4Error) as caught:
        verify(wire, now=now)
    assert caught.value.status == 403
    return caught.value


def with_authorization(wire: Wire, edit: Any) -> Wire:
    return wire.with_header("Authorization", edit(wire.header("authorization")))


def assert_identity(identity: SignedIdentity, wire: Wire) -> None:
    assert identity == SignedIdentity(ACCESS_KEY, REGION, "airflow", wire.signed_at)


# --- requests signed with botocore's SigV4Auth ---------------------------------------------------


def test_put_with_json_body_verifies_and_names_the_signer() -> None:
    # Given a CreateEnvironment-shaped PUT signed by botocore
    body = json.dumps({"ExecutionRoleArn": "arn:aws:iam::000000000000:role/r"}).encode()
    wire = sign("PUT", f"{ENDPOINT}/environments/MyEnv", body=body, headers={"Content-Type": "application/json"})
    # When it is verified / Then the identity is the signer's key, region, service and time
    assert_identity(verify(wire), wire)


@pytest.mark.parametrize(
    "url, params",
    [
        (f"{ENDPOINT}/environments?MaxResults=5&NextToken=abc%3D", None),
        (f"{ENDPOINT}/environments", [("NextToken", "abc="), ("MaxResults", "5")]),
    ],
    ids=["query-in-url", "query-as-params"],
)
def test_get_with_encoded_query_parameters_verifies(url: str, params: list[tuple[str, str]] | None) -> None:
    # Given a ListEnvironments GET whose NextToken needs percent-encoding
    wire = sign("GET", url, params=params)
    # When verified / Then it passes, whatever order the client put the parameters in
    assert_identity(verify(wire), wire)


@pytest.mark.parametrize(
    "query, params",
    [("?tagKeys=a&tagKeys=b%20c", None), ("", [("tagKeys", "a"), ("tagKeys", "b c")])],
    ids=["space-as-%20", "space-as-plus"],
)
def test_delete_tags_with_encoded_arn_and_repeated_query_keys_verifies(
    query: str, params: list[tuple[str, str]] | None
) -> None:
    # Given an UntagResource DELETE whose ARN travels percent-encoded (botocore double-encodes it
    # when signing) and whose repeated key has a value with a space
    path = "/tags/" + quote(ARN, safe="")
    wire = sign("DELETE", f"{ENDPOINT}{path}{query}", params=params)
    assert wire.raw_path == "/tags/arn%3Aaws%3Aairflow%3Aus-east-1%3A000000000000%3Aenvironment%2FMyEnv"
    # When verified / Then it passes
    assert_identity(verify(wire), wire)


def test_decoded_arn_path_does_not_verify() -> None:
    # Given a signed tags request whose path a proxy decoded on the way
    wire = sign("GET", f"{ENDPOINT}/tags/" + quote(ARN, safe=""))
    decoded = replace(wire, raw_path="/tags/" + ARN)
    # When verified / Then the signature no longer matches
    assert rejection(decoded).code == INVALID_SIGNATURE


@pytest.mark.parametrize(
    "base_url",
    ["http://127.0.0.1:8787", "http://api.127.0.0.1:8787", "http://env.localhost:8787", "http://localhost"],
)
def test_host_header_with_port_or_prefix_verifies(base_url: str) -> None:
    # Given a request to a host with a port and/or a botocore host prefix
    wire = sign("GET", f"{base_url}/environments/MyEnv")
    # When verified / Then it passes with the Host header exactly as sent
    assert wire.header("host") == urlsplit(base_url).netloc
    assert_identity(verify(wire), wire)


def test_unicode_body_verifies() -> None:
    # Given a UTF-8 body with non-ASCII text
    body = json.dumps({"Tags": {"owner": "Zoë 🚀 東京"}}, ensure_ascii=False).encode("utf-8")
    wire = sign("POST", f"{ENDPOINT}/tags/{quote(ARN, safe='')}", body=body)
    # When verified / Then it passes
    assert_identity(verify(wire), wire)


def test_empty_body_verifies() -> None:
    # Given a bodyless GET
    wire = sign("GET", f"{ENDPOINT}/environments/MyEnv")
    assert wire.body == b""
    # When verified / Then it passes
    assert_identity(verify(wire), wire)


def test_date_header_instead_of_x_amz_date_verifies() -> None:
    # Given a request that already had a Date header, which botocore then signs instead of X-Amz-Date
    wire = sign("GET", f"{ENDPOINT}/environments", headers={"Date": "placeholder"})
    assert not any(name.lower() == "x-amz-date" for name, _ in wire.headers)
    # When verified / Then it passes
    assert verify(wire).access_key_id == ACCESS_KEY


def test_whitespace_in_values_and_repeated_headers_are_canonicalised_like_botocore() -> None:
    # Given a signed header whose value has inner runs of whitespace, and a header sent twice
    request = AWSRequest(method="GET", url=f"{ENDPOINT}/environments", headers={"X-Custom": "  a   b\tc "})
    request.headers["X-Multi"] = "one"
    request.headers["X-Multi"] = " two  words "
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "airflow", REGION).add_auth(request)
    assert "x-custom;x-multi" in request.headers["Authorization"]
    wire = wire_from("GET", request.url, list(request.headers.items()), None)
    # When a proxy re-spaces the value / Then it still verifies, because whitespace is collapsed
    assert verify(wire.with_header("X-Custom", "a b c")).access_key_id == ACCESS_KEY
    # When the repeated header's order changes / Then it no longer verifies
    reordered = wire.with_header("X-Multi", None)
    reordered = replace(reordered, headers=reordered.headers + (("X-Multi", " two  words "), ("X-Multi", "one")))
    assert rejection(reordered).code == INVALID_SIGNATURE


def test_session_token_is_accepted_when_signed() -> None:
    # Given temporary credentials, which botocore sends and signs as X-Amz-Security-Token
    wire = sign("GET", f"{ENDPOINT}/environments", credentials=Credentials(ACCESS_KEY, SECRET_KEY, "session-token"))
    assert "x-amz-security-token" in wire.header("authorization")
    # When verified / Then it passes
    assert verify(wire).access_key_id == ACCESS_KEY


def test_unsigned_payload_marker_verifies_over_https() -> None:
    # Given an HTTPS request where the client opted out of payload signing
    wire = sign("PUT", "https://127.0.0.1:8787/environments/MyEnv", body=b"{}",
                context={"payload_signing_enabled": False})
    assert wire.header("x-amz-content-sha256") == "UNSIGNED-PAYLOAD"
    # When verified / Then it passes
    assert verify(wire).access_key_id == ACCESS_KEY


def test_matching_content_sha256_header_verifies() -> None:
    # Given a client that declares the body hash itself
    body = b'{"a": 1}'
    wire = sign("PUT", f"{ENDPOINT}/environments/MyEnv", body=body,
                headers={"X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest()})
    # When verified / Then it passes
    assert verify(wire).access_key_id == ACCESS_KEY


# --- presigned (query) auth ----------------------------------------------------------------------


def test_presigned_url_verifies() -> None:
    # Given a URL presigned with SigV4QueryAuth
    wire = presign("GET", f"{ENDPOINT}/environments?MaxResults=5")
    assert "X-Amz-Signature=" in wire.query_string
    assert not any(name.lower() == "authorization" for name, _ in wire.headers)
    # When verified / Then it passes
    identity = verify(wire)
    assert (identity.access_key_id, identity.region, identity.service) == (ACCESS_KEY, REGION, "airflow")


def test_presigned_url_is_rejected_after_it_expires() -> None:
    # Given a URL presigned for 5 minutes
    wire = presign("GET", f"{ENDPOINT}/environments", expires=300)
    signed_at = datetime.strptime(dict(p.split("=", 1) for p in wire.query_string.split("&"))["X-Amz-Date"],
                                  "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    # When used 6 minutes later / Then it is expired
    error = rejection(wire, now=signed_at + timedelta(minutes=6))
    assert error.code == INVALID_SIGNATURE
    assert error.message.startswith("Signature expired: ")


def test_presigned_url_with_tampered_query_is_rejected() -> None:
    # Given a presigned URL whose operation parameter was changed
    wire = presign("GET", f"{ENDPOINT}/environments?MaxResults=5")
    tampered = replace(wire, query_string=wire.query_string.replace("MaxResults=5", "MaxResults=25"))
    # When verified / Then the signature does not match
    assert rejection(tampered).message == MISMATCH


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda q: q.replace("X-Amz-Algorithm=AWS4-HMAC-SHA256", "X-Amz-Algorithm=AWS4-HMAC-SHA1"),
         "X-Amz-Algorithm only supports 'AWS4-HMAC-SHA256'."),
        (lambda q: "&".join(p for p in q.split("&") if not p.startswith("X-Amz-Date=")),
         "AWS query-string parameters must include 'X-Amz-Date'. Re-examine the query-string parameters."),
    ],
    ids=["wrong-algorithm", "missing-date"],
)
def test_malformed_presigned_url_is_incomplete(edit: Any, message: str) -> None:
    # Given a presigned URL missing or misstating an auth parameter
    wire = presign("GET", f"{ENDPOINT}/environments")
    # When verified / Then AWS's IncompleteSignature error is raised
    error = rejection(replace(wire, query_string=edit(wire.query_string)))
    assert (error.code, error.message) == (INCOMPLETE_SIGNATURE, message)


# --- requests sent by a real boto3 mwaa client ---------------------------------------------------


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def captured_client(**config: Any) -> tuple[Any, list[Wire]]:
    client = boto3.client(
        "mwaa",
        endpoint_url=ENDPOINT,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(retries={"max_attempts": 1}, **config),
    )
    sent: list[Wire] = []

    def capture(request: Any, **_: Any) -> AWSResponse:
        body = request.body.read() if hasattr(request.body, "read") else request.body
        sent.append(wire_from(request.method, request.url, list(request.headers.items()), body))
        return AWSResponse(request.url, 200, {"Content-Type": "application/json"},
                           _Raw(b'{"Arn": "%s"}' % ARN.encode()))

    client.meta.events.register("before-send", capture)
    return client, sent


@pytest.fixture(scope="module")
def boto3_client() -> tuple[Any, list[Wire]]:
    return captured_client()


@pytest.mark.parametrize(
    "call, method, path, query, host",
    [
        (lambda c: c.create_environment(
            Name="MyEnv", ExecutionRoleArn="arn:aws:iam::000000000000:role/r",
            SourceBucketArn="arn:aws:s3:::bucket", DagS3Path="dags",
            NetworkConfiguration={"SubnetIds": ["s-1", "s-2"], "SecurityGroupIds": ["sg-1"]},
            Tags={"owner": "Zoë"}),
         "PUT", "/environments/MyEnv", "", "api.127.0.0.1:8787"),
        (lambda c: c.list_environments(MaxResults=5, NextToken="abc="),
         "GET", "/environments", "MaxResults=5&NextToken=abc%3D", "api.127.0.0.1:8787"),
        (lambda c: c.untag_resource(ResourceArn=ARN, tagKeys=["a", "b c", "Zoë~*+"]),
         "DELETE", "/tags/" + quote(ARN, safe=""), "tagKeys=a&tagKeys=b%20c&tagKeys=Zo%C3%AB~%2A%2B",
         "api.127.0.0.1:8787"),
        (lambda c: c.list_tags_for_resource(ResourceArn=ARN),
         "GET", "/tags/" + quote(ARN, safe=""), "", "api.127.0.0.1:8787"),
        (lambda c: c.create_cli_token(Name="MyEnv"),
         "POST", "/clitoken/MyEnv", "", "env.127.0.0.1:8787"),
    ],
    ids=["create_environment", "list_environments", "untag_resource", "list_tags", "create_cli_token"],
)
def test_requests_sent_by_boto3_mwaa_client_verify(
    boto3_client: tuple[Any, list[Wire]], call: Any, method: str, path: str, query: str, host: str
) -> None:
    # Given a real boto3 mwaa client pointed at the local endpoint
    client, sent = boto3_client
    sent.clear()
    # When it makes the call (captured just before it would hit the network)
    call(client)
    (wire,) = sent
    # Then the wire request has the expected shape, including the injected host prefix
    assert (wire.method, wire.raw_path, wire.query_string, wire.header("host")) == (method, path, query, host)
    # And it verifies, naming the client's key, region and the airflow signing name
    assert_identity(verify(wire), wire)


def test_boto3_request_without_host_prefix_verifies() -> None:
    # Given a client with host prefix injection disabled
    client, sent = captured_client(inject_host_prefix=False)
    # When it calls GetEnvironment
    client.get_environment(Name="MyEnv")
    # Then the plain host is signed and the request verifies
    assert sent[0].header("host") == "127.0.0.1:8787"
    assert_identity(verify(sent[0]), sent[0])


# --- rejections ----------------------------------------------------------------------------------


@pytest.fixture()
def signed() -> Wire:
    return sign("PUT", f"{ENDPOINT}/environments/MyEnv", body=b'{"MaxWorkers": 2}',
                headers={"Content-Type": "application/json"})


def test_request_without_any_signature_is_missing_a_token(signed: Wire) -> None:
    # Given a request with neither an Authorization header nor presigned query parameters
    wire = signed.with_header("Authorization", None)
    # When verified / Then AWS's MissingAuthenticationToken error is raised
    error = rejection(wire)
    assert (error.code, error.message) == (MISSING_AUTHENTICATION_TOKEN, "Missing Authentication Token")


@pytest.mark.parametrize("name", ["Credential", "SignedHeaders", "Signature"])
def test_authorization_without_a_required_parameter_is_incomplete(signed: Wire, name: str) -> None:
    # Given an Authorization header with one of its three parameters removed
    def drop(value: str) -> str:
        algorithm, _, rest = value.partition(" ")
        return algorithm + " " + ", ".join(p for p in rest.split(", ") if not p.startswith(name + "="))

    wire = with_authorization(signed, drop)
    # When verified / Then the error names the parameter and echoes the header, as AWS does
    error = rejection(wire)
    assert error.code == INCOMPLETE_SIGNATURE
    assert error.message == (
        f"Authorization header requires '{name}' parameter. Authorization={wire.header('authorization')}"
    )


def test_non_sigv4_authorization_is_reported_like_aws(signed: Wire) -> None:
    # Given a bearer token where a signature should be
    wire = signed.with_header("Authorization", "Bearer abc.def")
    # When verified / Then AWS's key=value complaint is raised
    error = rejection(wire)
    assert (error.code, error.message) == (
        INCOMPLETE_SIGNATURE,
        "'abc.def' not a valid key=value pair (missing equal-sign) in Authorization header: 'Bearer abc.def'.",
    )


def test_wrong_algorithm_is_incomplete(signed: Wire) -> None:
    # Given a well-formed header that names another algorithm
    wire = with_authorization(signed, lambda v: v.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512", 1))
    # When verified / Then it is an IncompleteSignature error
    assert rejection(wire).code == INCOMPLETE_SIGNATURE


def test_credential_with_wrong_number_of_elements_is_incomplete(signed: Wire) -> None:
    # Given a credential scope missing its region
    wire = with_authorization(signed, lambda v: v.replace(f"/{REGION}/", "/", 1))
    # When verified / Then AWS's credential-shape error is raised
    error = rejection(wire)
    assert error.code == INCOMPLETE_SIGNATURE
    assert error.message.startswith("Credential must have exactly 5 slash-delimited elements")


def test_missing_date_is_incomplete(signed: Wire) -> None:
    # Given a signed request that lost its X-Amz-Date header
    wire = signed.with_header("X-Amz-Date", None)
    # When verified / Then AWS's IncompleteSignature error names both accepted date headers
    error = rejection(wire)
    assert error.code == INCOMPLETE_SIGNATURE
    assert error.message.startswith(
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization="
    )


def test_malformed_date_is_incomplete(signed: Wire) -> None:
    # Given an X-Amz-Date in extended rather than basic ISO-8601 format
    wire = signed.with_header("X-Amz-Date", "2026-11-29T00:00:00Z")
    # When verified / Then it is an IncompleteSignature error
    assert rejection(wire).code == INCOMPLETE_SIGNATURE


@pytest.mark.parametrize("stamp", ["20261301T000000Z", "20260230T000000Z", "20261129T240000Z", "20261129T236000Z",
                                   "20261129T000060Z", "00001129T000000Z"],
                         ids=["month-13", "30-february", "hour-24", "minute-60", "second-60", "year-0"])
def test_date_of_the_right_shape_but_not_on_the_calendar_is_incomplete(signed: Wire, stamp: str) -> None:
    # Given an X-Amz-Date of the basic ISO-8601 shape that names no real instant
    wire = signed.with_header("X-Amz-Date", stamp)
    # When verified / Then it is AWS's IncompleteSignature date error, as for any malformed date
    error = rejection(wire)
    assert (error.code, error.message) == (
        INCOMPLETE_SIGNATURE,
        f"Date must be in ISO-8601 'basic format'. Got '{stamp}'. See http://en.wikipedia.org/wiki/ISO_8601",
    )


def test_request_signed_with_a_replaced_secret_no_longer_verifies() -> None:
    # Given a key whose requests verified (its derived signing key is cached for the day)
    wire = sign("GET", f"{ENDPOINT}/environments")
    current = {ACCESS_KEY: SECRET_KEY}

    def secret_for(key_id: str) -> str | None:
        return current.get(key_id)

    def check(request: Wire) -> SignedIdentity:
        return verify_request(method=request.method, raw_path=request.raw_path, query_string=request.query_string,
                              headers=request.headers, body=request.body, secret_for=secret_for,
                              now=datetime.now(timezone.utc))

    check(wire)
    # When its secret is replaced
    current[ACCESS_KEY] = "a-new-secret"
    # Then a request signed with the old secret is refused and one signed with the new verifies
    with pytest.raises(SigV4Error) as caught:
        check(wire)
    assert (caught.value.code, caught.value.message) == (INVALID_SIGNATURE, MISMATCH)
    renewed = sign("GET", f"{ENDPOINT}/environments", credentials=Credentials(ACCESS_KEY, "a-new-secret"))
    assert check(renewed).access_key_id == ACCESS_KEY


def test_request_scoped_to_a_very_long_region_verifies() -> None:
    # Given a request signed for a region name far longer than any real one
    region = "r" * 200
    request = AWSRequest(method="GET", url=f"{ENDPOINT}/environments")
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "airflow", region).add_auth(request)
    prepared = request.prepare()
    wire = wire_from(prepared.method, prepared.url, list(request.headers.items()), prepared.body)
    # When verified / Then it verifies and names that region
    assert verify(wire).region == region


def test_unknown_access_key_is_unrecognized() -> None:
    # Given a request signed with a key the server does not know
    wire = sign("GET", f"{ENDPOINT}/environments", credentials=Credentials("AKIAUNKNOWN", SECRET_KEY))
    # When verified / Then AWS's UnrecognizedClient error is raised
    error = rejection(wire)
    assert (error.code, error.message) == (
        UNRECOGNIZED_CLIENT, "The security token included in the request is invalid."
    )


def test_wrong_secret_is_a_signature_mismatch() -> None:
    # Given a known key signed with the wrong secret
    wire = sign("GET", f"{ENDPOINT}/environments", credentials=Credentials(ACCESS_KEY, "not-the-secret"))
    # When verified / Then AWS's InvalidSignature error is raised
    error = rejection(wire)
    assert (error.code, error.message) == (INVALID_SIGNATURE, MISMATCH)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda w: replace(w, body=w.body.replace(b"2", b"9")),
        lambda w: replace(w, raw_path="/environments/OtherEnv"),
        lambda w: replace(w, method="PATCH"),
        lambda w: replace(w, query_string="MaxResults=1"),
        lambda w: w.with_header("Content-Type", "text/plain"),
        lambda w: w.with_header("Host", "127.0.0.1:9999"),
        lambda w: with_authorization(w, lambda v: v[:-1] + ("0" if v[-1] != "0" else "1")),
    ],
    ids=["body", "path", "method", "query", "signed-header", "host", "signature"],
)
def test_tampered_request_is_a_signature_mismatch(signed: Wire, tamper: Any) -> None:
    # Given a signed request altered after signing
    wire = tamper(signed)
    # When verified / Then AWS's InvalidSignature error is raised
    error = rejection(wire)
    assert (error.code, error.message) == (INVALID_SIGNATURE, MISMATCH)


def test_content_sha256_header_that_disagrees_with_body_is_rejected() -> None:
    # Given a declared payload hash that is not the body's
    wire = sign("PUT", f"{ENDPOINT}/environments/MyEnv", body=b"{}", headers={"X-Amz-Content-SHA256": "0" * 64})
    # When verified / Then it is an InvalidSignature error
    assert rejection(wire).code == INVALID_SIGNATURE


def test_clock_six_minutes_ahead_reports_signature_expired(signed: Wire) -> None:
    # Given the server's clock is 6 minutes past the signing time
    now = signed.signed_at + timedelta(minutes=6)
    # When verified / Then AWS's expiry message, with its timestamps, is raised
    error = rejection(signed, now=now)
    fmt = "%Y%m%dT%H%M%SZ"
    assert (error.code, error.message) == (
        INVALID_SIGNATURE,
        f"Signature expired: {signed.signed_at:{fmt}} is now earlier than "
        f"{now - timedelta(minutes=5):{fmt}} ({now:{fmt}} - 5 min.)",
    )


def test_clock_six_minutes_behind_reports_signature_not_yet_current(signed: Wire) -> None:
    # Given the server's clock is 6 minutes before the signing time
    now = signed.signed_at - timedelta(minutes=6)
    # When verified / Then AWS's not-yet-current message is raised
    error = rejection(signed, now=now)
    fmt = "%Y%m%dT%H%M%SZ"
    assert (error.code, error.message) == (
        INVALID_SIGNATURE,
        f"Signature not yet current: {signed.signed_at:{fmt}} is still later than "
        f"{now + timedelta(minutes=5):{fmt}} ({now:{fmt}} + 5 min.)",
    )


def test_clock_four_minutes_off_is_tolerated(signed: Wire) -> None:
    # Given skew inside the 5-minute window, with a naive UTC clock
    for offset in (timedelta(minutes=4), timedelta(minutes=-4)):
        now = (signed.signed_at + offset).replace(tzinfo=None)
        # When verified / Then it passes
        assert verify(signed, now=now).access_key_id == ACCESS_KEY


def test_credential_scoped_to_another_service_is_rejected() -> None:
    # Given a request signed for API Gateway instead of airflow
    wire = sign("GET", f"{ENDPOINT}/environments", service="execute-api")
    # When verified / Then AWS's scope error is raised
    error = rejection(wire)
    assert (error.code, error.message) == (
        INVALID_SIGNATURE, "Credential should be scoped to correct service: 'airflow'. "
    )


def test_credential_date_that_disagrees_with_x_amz_date_is_rejected(signed: Wire) -> None:
    # Given a credential scope dated the day before the request
    day = signed.signed_at.strftime("%Y%m%d")
    earlier = (signed.signed_at - timedelta(days=1)).strftime("%Y%m%d")
    wire = with_authorization(signed, lambda v: v.replace(f"/{day}/", f"/{earlier}/", 1))
    # When verified / Then it is an InvalidSignature error
    error = rejection(wire)
    assert error.code == INVALID_SIGNATURE
    assert error.message.startswith("Date in Credential scope does not match")


def test_host_must_be_a_signed_header(signed: Wire) -> None:
    # Given a signature that leaves Host out of SignedHeaders
    wire = with_authorization(signed, lambda v: v.replace(";host;", ";", 1))
    # When verified / Then AWS's host requirement is reported
    assert rejection(wire).message == "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."


def test_key_store_failures_are_not_disguised_as_auth_errors(signed: Wire) -> None:
    # Given a key store that is down
    def broken(_: str) -> str | None:
        raise ConnectionError("key store unreachable")

    # When verifying / Then its own exception surfaces, for the caller to answer 500
    with pytest.raises(ConnectionError):
        verify_request(method=signed.method, raw_path=signed.raw_path, query_string=signed.query_string,
                       headers=signed.headers, body=signed.body, secret_for=broken,
                       now=datetime.now(timezone.utc))


@pytest.mark.parametrize(
    "authorization",
    [
        "", " ", "AWS4-HMAC-SHA256", "AWS4-HMAC-SHA256 ", "AWS4-HMAC-SHA256 ,,,", "AWS4-HMAC-SHA256 =",
        "AWS4-HMAC-SHA256 Credential=, SignedHeaders=, Signature=",
        "AWS4-HMAC-SHA256 Credential=////, SignedHeaders=host, Signature=x",
        f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/x/y/airflow/aws4_request, SignedHeaders=host, Signature=ß€\udc80",
        "AWS4-HMAC-SHA256 Credential=a/b/c/d/e/f, SignedHeaders=;;, Signature=00",
        "\x00\xff\u2028 Credential=\n", "Basic dXNlcjpwYXNz", "AWS AKID:c2ln=",
    ],
)
def test_garbage_authorization_values_raise_only_sigv4_errors(signed: Wire, authorization: str) -> None:
    # Given an arbitrary Authorization value
    wire = signed.with_header("Authorization", authorization)
    # When verified / Then the only possible outcome is a 403 SigV4Error
    rejection(wire)


def test_random_garbage_requests_raise_only_sigv4_errors(signed: Wire) -> None:
    # Given many randomly corrupted requests (seeded, so failures reproduce)
    rng = random.Random(4)
    alphabet = "aA0 =,;/%+&?.~:\t\x00é€\udc80" + "AWS4-HMAC-SHA256 Credential SignedHeaders Signature X-Amz-"
    base = signed.header("authorization")

    def noise(limit: int = 40) -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(limit)))

    for _ in range(400):
        cut = rng.randrange(len(base))
        wire = replace(
            signed.with_header("Authorization", base[:cut] + noise() + base[cut + rng.randrange(8):]),
            raw_path=rng.choice([signed.raw_path, noise(), "/" + noise(), ""]),
            query_string=rng.choice(["", noise(), "X-Amz-Algorithm=" + noise() + "&X-Amz-Date=" + noise()]),
        )
        if rng.random() < 0.3:
            wire = wire.with_header("Authorization", None)
        if rng.random() < 0.3:
            wire = wire.with_header(rng.choice(["X-Amz-Date", "Date", "X-Amz-Content-SHA256", noise(8)]), noise())
        # When verified / Then it never escapes as anything but a SigV4Error
        rejection(wire, now=signed.signed_at)


def test_the_canonical_uri_is_what_botocore_signs_for_any_path() -> None:
    # Given many random paths over unreserved characters, '%', '/', dots and others that need quoting
    from airdock.local.sigv4 import _canonical_uri

    signer = SigV4Auth(Credentials("AKIDEXAMPLE", "secret"), "airflow", "us-east-1")
    rng = random.Random(20261130)
    alphabet = "abcXYZ019_.~-/%:@+! é"
    paths = ["/" + "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40))) for _ in range(20_000)]
    paths += ["/a/./b/../../c/", "//x//y/", "/..", "/./", "/a/b/..", "/%2e%2e/a"]
    # Then each canonical URI is the second line of botocore's own canonical request (the fast path included)
    for path in paths:
        botocore_uri = signer.canonical_request(AWSRequest(method="GET", url=f"http://h{path}")).split("\n")[1]
        assert _canonical_uri(path) == botocore_uri, path
