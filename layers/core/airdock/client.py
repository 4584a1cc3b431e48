"""A boto3 `mwaa` client for an Airdock deployed on AWS (API Gateway with AWS_IAM auth).

Two differences from calling MWAA itself, both handled here:

* API Gateway's IAM auth accepts SigV4 signatures for the service `execute-api` only, while
  botocore signs `mwaa` requests for `airflow`. A `before-sign` hook puts `execute-api` into the
  request's signing context, which botocore's signer honours (the same mechanism botocore uses
  for per-operation signing overrides), so the rest of the client is untouched.
* botocore prefixes MWAA hosts per operation (`api.`, `env.`, `ops.`); against API Gateway's
  host that would be a different, non-existent host, so host prefix injection is turned off.

    from airdock.client import mwaa_client
    mwaa = mwaa_client("https://abc123.execute-api.us-east-1.amazonaws.com/dev")
    mwaa.list_environments()

Without this module: `boto3.client("mwaa", endpoint_url=..., config=Config(inject_host_prefix=False))`
plus `client.meta.events.register("before-sign.mwaa", sign_for_execute_api)`.
"""
from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

SIGNING_NAME = "execute-api"


def sign_for_execute_api(request: Any, **_: Any) -> None:
    """botocore event handler (`before-sign.mwaa`): sign for API Gateway, not for `airflow`."""
    request.context.setdefault("signing", {})["signing_name"] = SIGNING_NAME


def mwaa_client(endpoint_url: str, region_name: str | None = None, session: boto3.session.Session | None = None,
                config: Config | None = None, **kwargs: Any) -> Any:
    """A boto3 MWAA client for the Airdock API at `endpoint_url` (the stack's `ApiEndpoint`
    output, stage path included). The region defaults to the one in the endpoint's host name."""
    if region_name is None:
        parts = endpoint_url.split("://", 1)[-1].split(".")
        if len(parts) > 3 and parts[1] == "execute-api":
            region_name = parts[2]
    base = Config(inject_host_prefix=False)
    client = (session or boto3.session.Session()).client(
        "mwaa", endpoint_url=endpoint_url, region_name=region_name,
        config=base.merge(config) if config else base, **kwargs,
    )
    client.meta.events.register("before-sign.mwaa", sign_for_execute_api)
    return client
