"""STS GetCallerIdentity on the local endpoint (`POST /`, `Action=GetCallerIdentity`, signed for
`sts`), the one STS call AWS clients make to learn their account: the Airflow Amazon provider's
hooks do (e.g. MwaaServerlessCreateWorkflowOperator builds an ARN from it)."""
from __future__ import annotations

from typing import Any, Callable
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from airdock.local.sigv4 import SigV4Error, verify_request


def is_sts(scope: dict[str, Any], body: bytes) -> bool:
    if scope.get("method") != "POST" or scope.get("path") != "/":
        return False
    content_type = next((v for k, v in scope.get("headers", []) if k.lower() == b"content-type"), b"")
    return content_type.startswith(b"application/x-www-form-urlencoded") and b"Action=GetCallerIdentity" in body


async def handle(context: Any, clock: Callable[[], Any], scope: dict[str, Any], body: bytes,
                 send: Callable[[dict[str, Any]], Any]) -> None:
    raw_path = scope.get("raw_path", scope["path"].encode()).decode("utf-8", "surrogateescape").split("?", 1)[0]
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
    try:
        identity = verify_request(method="POST", raw_path=raw_path,
                                  query_string=scope.get("query_string", b"").decode("utf-8", "surrogateescape"),
                                  headers=headers, body=body, secret_for=context.keys.secret_for, now=clock(),
                                  service="sts")
    except SigV4Error as exc:
        await _send(send, exc.status, f"<ErrorResponse><Error><Type>Sender</Type><Code>{exc.code}</Code>"
                                      f"<Message>{escape(exc.message)}</Message></Error></ErrorResponse>")
        return
    if parse_qs(body.decode("utf-8", "replace")).get("Action") != ["GetCallerIdentity"]:
        await _send(send, 400, "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidAction</Code>"
                               "<Message>Only GetCallerIdentity is served here.</Message></Error></ErrorResponse>")
        return
    key = context.keys.lookup(identity.access_key_id)
    account = context.settings.account_id
    arn = key.principal_arn if key else f"arn:{context.settings.partition}:iam::{account}:root"
    await _send(send, 200, '<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
                           f"<GetCallerIdentityResult><Arn>{escape(arn)}</Arn>"
                           f"<UserId>{escape(identity.access_key_id)}</UserId><Account>{account}</Account>"
                           "</GetCallerIdentityResult><ResponseMetadata><RequestId>00000000-0000-4000-8000-"
                           "000000000000</RequestId></ResponseMetadata></GetCallerIdentityResponse>")


async def _send(send: Callable[[dict[str, Any]], Any], status: int, xml: str) -> None:
    data = xml.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/xml"), (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})
