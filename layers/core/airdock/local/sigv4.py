"""Server-side verification of AWS Signature Version 4, as the MWAA front door does it.

The canonical request is rebuilt the way botocore builds it, because unmodified boto3 / AWS CLI
clients are the main callers and any divergence shows up as an unexplainable 403:

* canonical URI: ``quote(remove_dot_segments(raw_path), safe='/~')``. botocore double-encodes
  the already percent-encoded wire path for every service except S3, so an ARN label that travels
  as ``arn%3Aaws...`` is signed as ``arn%253Aaws...``. Verifying against a decoded path fails.
* canonical query: every ``key=value`` pair is decoded and re-encoded with ``safe='-_.~'``, then
  sorted by key and then value. Decoding treats ``+`` as a space because botocore's
  ``AWSRequest(params=...)`` and browsers' ``URLSearchParams`` put ``+`` on the wire while signing
  ``%20``; botocore itself always sends a real plus as ``%2B``.
* canonical headers: exactly the client's ``SignedHeaders``, values whitespace-collapsed with
  ``str.split()`` (botocore's rule, which also folds tabs and NBSP), repeats joined with ``,``.

Callers (the ASGI layer) should pass ``raw_path`` / ``query_string`` decoded from bytes with
``'utf-8', errors='surrogateescape'`` and header values decoded with ``'latin-1'``: that is the
inverse of what ``http.client`` does to what botocore signed, so bytes round-trip exactly.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from functools import lru_cache
from urllib.parse import quote, unquote_plus

from botocore.utils import remove_dot_segments

__all__ = [
    "ALGORITHM",
    "INCOMPLETE_SIGNATURE",
    "INVALID_SIGNATURE",
    "MISSING_AUTHENTICATION_TOKEN",
    "SignedIdentity",
    "SigV4Error",
    "UNRECOGNIZED_CLIENT",
    "verify_request",
]

ALGORITHM = "AWS4-HMAC-SHA256"
MISSING_AUTHENTICATION_TOKEN = "MissingAuthenticationTokenException"
UNRECOGNIZED_CLIENT = "UnrecognizedClientException"
INVALID_SIGNATURE = "InvalidSignatureException"
INCOMPLETE_SIGNATURE = "IncompleteSignatureException"

_SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)
_UNKNOWN_KEY = "The security token included in the request is invalid."
_AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
_AMZ_DATE_SHAPE = re.compile(r"\d{8}T\d{6}Z\Z", re.ASCII)
_TERMINATOR = "aws4_request"
_UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
# SigV4 caps presigned URLs at seven days; AWS rejects anything longer outright.
_MAX_PRESIGN_EXPIRES = 604800
_MAX_CACHED_REGION = 32
_PRESIGN_MARKERS = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature")
# Canonical text can carry whatever a caller decoded from the wire; these handlers make encoding
# total so odd bytes yield a signature mismatch instead of an exception.
_PATH_ERRORS = "surrogateescape"
# Characters quote(..., safe="/~") leaves as they are, and '%', which it encodes as '%25'.
_QUOTED_ONLY_PERCENT = re.compile(r"[A-Za-z0-9_.~/%-]+")
_TEXT_ERRORS = "surrogatepass"


@dataclass(frozen=True)
class SignedIdentity:
    """Who signed a verified request, and the scope they signed it for."""

    access_key_id: str
    region: str
    service: str
    signed_at: datetime


class SigV4Error(Exception):
    """An authentication failure, carrying the error code and message AWS itself returns."""

    def __init__(self, code: str, message: str, status: int = 403) -> None:
        super().__init__(f"{code}: {message}")
        self.code: str = code
        self.message: str = message
        self.status: int = status


@dataclass(frozen=True)
class _Credential:
    access_key_id: str
    date: str
    region: str
    service: str


@dataclass(frozen=True)
class _Claim:
    """What the client asserts: its scope, timestamp and signature, before we check any of it."""

    credential: _Credential
    signed_headers: str
    signature: str
    amz_date: str
    signed_at: datetime
    presigned: bool
    expires: int | None


class _SecretLookupFailed(Exception):
    """Carries an exception out of ``secret_for`` past the catch-all that guards parsing."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(repr(original))
        self.original = original


def verify_request(
    *,
    method: str,
    raw_path: str,
    query_string: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    secret_for: Callable[[str], str | None],
    now: datetime,
    service: str = "airflow",
    max_skew: timedelta = timedelta(minutes=5),
) -> SignedIdentity:
    """Verify a SigV4-signed request (Authorization header or presigned query).

    Raises SigV4Error for every malformed or unauthentic request; exceptions raised by
    ``secret_for`` itself propagate unchanged, since a broken key store is a server fault, not a
    bad request.
    """
    try:
        return _verify(
            method=method,
            raw_path=raw_path,
            query_string=query_string,
            headers=headers,
            body=body,
            secret_for=secret_for,
            now=now,
            service=service,
            max_skew=max_skew,
        )
    except SigV4Error:
        raise
    except _SecretLookupFailed as failure:
        raise failure.original from None
    except Exception as exc:
        # Fail closed: an input we did not foresee must read as a bad signature, never as a 500
        # that a caller could probe.
        raise SigV4Error(INVALID_SIGNATURE, _SIGNATURE_MISMATCH) from exc


def _verify(
    *,
    method: str,
    raw_path: str,
    query_string: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    secret_for: Callable[[str], str | None],
    now: datetime,
    service: str,
    max_skew: timedelta,
) -> SignedIdentity:
    header_map = _header_map(headers)
    query = _parse_query(query_string)
    now_utc = now.replace(tzinfo=timezone.utc) if now.tzinfo is None else now.astimezone(timezone.utc)

    authorization = header_map.get("authorization", [""])[0].strip()
    if authorization:
        claim = _claim_from_header(authorization, header_map)
    elif any(key in _PRESIGN_MARKERS for key, _ in query):
        claim = _claim_from_query(query)
    else:
        raise SigV4Error(MISSING_AUTHENTICATION_TOKEN, "Missing Authentication Token")

    _check_scope(claim, service)
    _check_clock(claim, now_utc, max_skew)
    if "host" not in _split_signed_headers(claim.signed_headers):
        raise SigV4Error(
            INCOMPLETE_SIGNATURE,
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
        )

    try:
        secret = secret_for(claim.credential.access_key_id)
    except Exception as exc:
        raise _SecretLookupFailed(exc) from exc
    if secret is None:
        raise SigV4Error(UNRECOGNIZED_CLIENT, _UNKNOWN_KEY)

    canonical_request = "\n".join(
        [
            method.upper(),
            _canonical_uri(raw_path),
            _canonical_query(query, drop_signature=claim.presigned),
            _canonical_headers(claim.signed_headers, header_map) + "\n",
            claim.signed_headers,
            _payload_hash(header_map, body),
        ]
    )
    scope = "/".join(
        [claim.credential.date, claim.credential.region, claim.credential.service, _TERMINATOR]
    )
    string_to_sign = "\n".join(
        [
            ALGORITHM,
            claim.amz_date,
            scope,
            hashlib.sha256(canonical_request.encode("utf-8", _TEXT_ERRORS)).hexdigest(),
        ]
    )
    expected = _signature(secret, claim.credential, string_to_sign)
    if not hmac.compare_digest(expected.encode("ascii"), claim.signature.encode("utf-8", _TEXT_ERRORS)):
        raise SigV4Error(INVALID_SIGNATURE, _SIGNATURE_MISMATCH)

    return SignedIdentity(
        access_key_id=claim.credential.access_key_id,
        region=claim.credential.region,
        service=claim.credential.service,
        signed_at=claim.signed_at,
    )


# --- parsing what the client claims -------------------------------------------------------------


def _header_map(headers: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    header_map: dict[str, list[str]] = {}
    for name, value in headers:
        header_map.setdefault(name.strip().lower(), []).append(value)
    return header_map


def _claim_from_header(authorization: str, header_map: dict[str, list[str]]) -> _Claim:
    # AWS tokenises on commas *and* whitespace: "Credential= AKID/..." yields two tokens and the
    # second is reported as lacking an equal sign. We mirror that so clients see familiar errors.
    scheme, _, rest = authorization.partition(" ")
    params: dict[str, str] = {}
    for token in rest.replace(",", " ").split():
        key, sep, value = token.partition("=")
        if not sep:
            raise SigV4Error(
                INCOMPLETE_SIGNATURE,
                f"'{token}' not a valid key=value pair (missing equal-sign) in Authorization "
                f"header: '{authorization}'.",
            )
        params[key] = value

    date_value = _first(header_map, "x-amz-date") or _first(header_map, "date")
    problems = [
        f"Authorization header requires '{name}' parameter."
        for name in ("Credential", "Signature", "SignedHeaders")
        if not params.get(name)
    ]
    if not date_value:
        problems.append(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
        )
    if problems:
        raise SigV4Error(INCOMPLETE_SIGNATURE, " ".join(problems) + f" Authorization={authorization}")
    if scheme != ALGORITHM:
        raise SigV4Error(INCOMPLETE_SIGNATURE, f"Unsupported AWS 'algorithm': '{scheme}'.")

    x_amz_date = _first(header_map, "x-amz-date")
    if x_amz_date:
        amz_date, signed_at = _parse_amz_date(x_amz_date)
    else:
        amz_date, signed_at = _parse_http_date(date_value)
    return _Claim(
        credential=_parse_credential(params["Credential"]),
        signed_headers=params["SignedHeaders"],
        signature=params["Signature"],
        amz_date=amz_date,
        signed_at=signed_at,
        presigned=False,
        expires=None,
    )


def _claim_from_query(query: list[tuple[str, str]]) -> _Claim:
    params: dict[str, str] = {}
    for key, value in query:
        params.setdefault(key, value)

    required = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-Date",
                "X-Amz-SignedHeaders")
    problems = [
        f"AWS query-string parameters must include '{name}'." for name in required if not params.get(name)
    ]
    if problems:
        raise SigV4Error(
            INCOMPLETE_SIGNATURE, " ".join(problems) + " Re-examine the query-string parameters."
        )
    if params["X-Amz-Algorithm"] != ALGORITHM:
        raise SigV4Error(INCOMPLETE_SIGNATURE, f"X-Amz-Algorithm only supports '{ALGORITHM}'.")

    expires: int | None = None
    raw_expires = params.get("X-Amz-Expires")
    if raw_expires is not None:
        if not raw_expires.isascii() or not raw_expires.isdigit():
            raise SigV4Error(INCOMPLETE_SIGNATURE, "X-Amz-Expires should be a number.")
        expires = int(raw_expires)
        if expires > _MAX_PRESIGN_EXPIRES:
            raise SigV4Error(
                INCOMPLETE_SIGNATURE,
                f"X-Amz-Expires must be less than a week (in seconds) that is {_MAX_PRESIGN_EXPIRES}.",
            )

    amz_date, signed_at = _parse_amz_date(params["X-Amz-Date"])
    return _Claim(
        credential=_parse_credential(params["X-Amz-Credential"]),
        signed_headers=params["X-Amz-SignedHeaders"],
        signature=params["X-Amz-Signature"],
        amz_date=amz_date,
        signed_at=signed_at,
        presigned=True,
        expires=expires,
    )


def _parse_credential(credential: str) -> _Credential:
    parts = credential.split("/")
    if len(parts) != 5:
        raise SigV4Error(
            INCOMPLETE_SIGNATURE,
            "Credential must have exactly 5 slash-delimited elements, "
            f"e.g. keyid/date/region/service/term, got '{credential}'",
        )
    access_key_id, date, region, service, terminator = parts
    if terminator != _TERMINATOR:
        raise SigV4Error(
            INVALID_SIGNATURE,
            f"Credential should be scoped with a valid terminator: '{_TERMINATOR}', not '{terminator}'. ",
        )
    return _Credential(access_key_id=access_key_id, date=date, region=region, service=service)


def _parse_amz_date(value: str) -> tuple[str, datetime]:
    # The shape check leaves only digits in fixed places, so the fields are read directly
    # (strptime costs a tenth of a request's verification); datetime refuses what strptime
    # would (month 13, hour 24, second 60, 30 February).
    if not _AMZ_DATE_SHAPE.match(value):
        raise SigV4Error(INCOMPLETE_SIGNATURE, _bad_date_message(value))
    try:
        parsed = datetime(int(value[0:4]), int(value[4:6]), int(value[6:8]), int(value[9:11]),
                          int(value[11:13]), int(value[13:15]), tzinfo=timezone.utc)
    except ValueError:
        raise SigV4Error(INCOMPLETE_SIGNATURE, _bad_date_message(value)) from None
    return value, parsed


def _parse_http_date(value: str) -> tuple[str, datetime]:
    # botocore signs with a Date header when the request already has one; the string-to-sign
    # then carries the same instant in ISO-8601 basic form.
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        raise SigV4Error(INCOMPLETE_SIGNATURE, _bad_date_message(value)) from None
    parsed = parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)
    return parsed.strftime(_AMZ_DATE_FORMAT), parsed


def _bad_date_message(value: str) -> str:
    return (
        f"Date must be in ISO-8601 'basic format'. Got '{value}'. "
        "See http://en.wikipedia.org/wiki/ISO_8601"
    )


def _first(header_map: dict[str, list[str]], name: str) -> str:
    values = header_map.get(name)
    return values[0].strip() if values else ""


# --- checks that need no secret -----------------------------------------------------------------


def _check_scope(claim: _Claim, service: str) -> None:
    credential = claim.credential
    if credential.service != service:
        raise SigV4Error(
            INVALID_SIGNATURE, f"Credential should be scoped to correct service: '{service}'. "
        )
    if not credential.region:
        raise SigV4Error(INVALID_SIGNATURE, "Credential should be scoped to a valid region. ")
    if credential.date != claim.amz_date[:8]:
        raise SigV4Error(
            INVALID_SIGNATURE,
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
            f"HTTP: '{credential.date}' != '{claim.amz_date[:8]}', from '{claim.amz_date}'.",
        )


def _check_clock(claim: _Claim, now: datetime, max_skew: timedelta) -> None:
    signed_at = claim.signed_at
    if claim.presigned and claim.expires is not None:
        # A presigned URL is meant to be used later; only its own lifetime bounds it in the past.
        lifetime = timedelta(seconds=claim.expires)
        if signed_at < now - lifetime:
            raise SigV4Error(
                INVALID_SIGNATURE,
                f"Signature expired: {claim.amz_date} is now earlier than "
                f"{(now - lifetime).strftime(_AMZ_DATE_FORMAT)} ({_stamp(now)} - {claim.expires} sec.)",
            )
    elif signed_at < now - max_skew:
        raise SigV4Error(
            INVALID_SIGNATURE,
            f"Signature expired: {claim.amz_date} is now earlier than "
            f"{(now - max_skew).strftime(_AMZ_DATE_FORMAT)} ({_stamp(now)} - {_describe(max_skew)})",
        )
    if signed_at > now + max_skew:
        raise SigV4Error(
            INVALID_SIGNATURE,
            f"Signature not yet current: {claim.amz_date} is still later than "
            f"{(now + max_skew).strftime(_AMZ_DATE_FORMAT)} ({_stamp(now)} + {_describe(max_skew)})",
        )


def _stamp(now: datetime) -> str:
    return now.strftime(_AMZ_DATE_FORMAT)


def _describe(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    return f"{seconds // 60} min." if seconds % 60 == 0 else f"{seconds} sec."


# --- canonical request --------------------------------------------------------------------------


def _canonical_uri(raw_path: str) -> str:
    # botocore's own normalisation (RFC 3986 dot segments, plus empty segments collapsed, which
    # AWS requires): the canonical URI must be byte-for-byte what the client signed.
    normalized = remove_dot_segments(raw_path) if raw_path else "/"
    if _QUOTED_ONLY_PERCENT.fullmatch(normalized):
        # The usual path (boto3 percent-encodes every ARN): quote would keep each character but
        # '%', at a pure-Python loop per byte.
        return normalized.replace("%", "%25")
    return quote(normalized or "/", safe="/~", errors=_PATH_ERRORS)


def _parse_query(query_string: str) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for segment in query_string.split("&"):
        if not segment:
            continue
        key, _, value = segment.partition("=")
        pairs.append(
            (
                unquote_plus(key, errors=_PATH_ERRORS),
                unquote_plus(value, errors=_PATH_ERRORS),
            )
        )
    return pairs


def _canonical_query(query: list[tuple[str, str]], *, drop_signature: bool) -> str:
    encoded = sorted(
        (_uri_encode(key), _uri_encode(value))
        for key, value in query
        if not (drop_signature and key == "X-Amz-Signature")
    )
    return "&".join(f"{key}={value}" for key, value in encoded)


def _uri_encode(text: str) -> str:
    return quote(text, safe="-_.~", errors=_PATH_ERRORS)


def _split_signed_headers(signed_headers: str) -> list[str]:
    return [name.lower() for name in signed_headers.split(";")]


def _canonical_headers(signed_headers: str, header_map: dict[str, list[str]]) -> str:
    # The client's SignedHeaders order is used as-is: every conforming signer sorts it, and
    # re-sorting here would let a reordered list verify against a different canonical request.
    lines = []
    for name in _split_signed_headers(signed_headers):
        values = header_map.get(name, [])
        lines.append(f"{name}:" + ",".join(" ".join(value.split()) for value in values))
    return "\n".join(lines)


def _payload_hash(header_map: dict[str, list[str]], body: bytes) -> str:
    actual = hashlib.sha256(body).hexdigest()
    declared = header_map.get("x-amz-content-sha256")
    if not declared:
        return actual
    # botocore puts the header value verbatim into the canonical request, so we must too.
    claimed = declared[0]
    if claimed == _UNSIGNED_PAYLOAD:
        return claimed
    if claimed != actual:
        raise SigV4Error(
            INVALID_SIGNATURE,
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        )
    return claimed


def _signature(secret: str, credential: _Credential, string_to_sign: str) -> str:
    # The region is the one free-form part of the scope (the date and service are checked
    # first); an absurd one is not worth a cache entry that anyone knowing a key id could pin.
    derive = _signing_key if len(credential.region) <= _MAX_CACHED_REGION else _signing_key.__wrapped__
    key = derive(secret, credential.date, credential.region, credential.service)
    return hmac.new(key, string_to_sign.encode("utf-8", _TEXT_ERRORS), hashlib.sha256).hexdigest()


@lru_cache(maxsize=256)
def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    # A key signs with the same derived key all day: four HMACs saved on every request after
    # the first. Keyed by the secret itself, so a rotated or deleted key never reuses an entry.
    key = ("AWS4" + secret).encode("utf-8", _TEXT_ERRORS)
    for part in (date, region, service, _TERMINATOR):
        key = hmac.new(key, part.encode("utf-8", _TEXT_ERRORS), hashlib.sha256).digest()
    return key
