"""UsedTokens (core/tokens.py) on DynamoDB: spent web login tokens in the control plane's
`EnvironmentsTable` (template.yaml), so every web-front task of an environment behind the load
balancer refuses a replay alike.

Item: `Name` (the table's partition key) = `used-login-token#{environment}#{token_id}` — an
environment name cannot contain `#`, so it never meets an environment's record — and `ExpiresAt`
(N, epoch seconds), the table's TTL attribute, so DynamoDB deletes spent records by itself. No
`Listing` attribute: the `ByName` index, and so ListEnvironments, never sees them.

One conditional PutItem is the whole check: it succeeds for a new id, or over a record already
past `ExpiresAt` (TTL deletion can lag by days), and fails for a live one.

The web-front task loads this file by path (the image copies it beside web_front.py as
`airdock_used_tokens_dynamodb.py`): nothing from airdock, boto3 only. The task's role (the
environment's execution role) needs `dynamodb:PutItem` on the table for these keys; README.md.
"""
from __future__ import annotations

from typing import Any

# EnvironmentsTable's key and TTL attribute (template.yaml; dynamodb_repository.NAME).
NAME = "Name"
EXPIRES_AT = "ExpiresAt"
KEY_PREFIX = "used-login-token#"


def item_key(environment: str, token_id: str) -> str:
    return f"{KEY_PREFIX}{environment}#{token_id}"


class DynamoDbUsedTokens:
    def __init__(self, table_name: str, client: Any = None) -> None:
        """`client`: a boto3 DynamoDB client; default `boto3.client("dynamodb")` (the task's region)."""
        if client is None:
            import boto3

            client = boto3.client("dynamodb")
        self.table_name = table_name
        self.client = client

    def spend(self, environment: str, token_id: str, expires_at: float, now: float) -> bool:
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item={NAME: {"S": item_key(environment, token_id)},
                      # TTL attributes are whole epoch seconds; round up so a record never
                      # expires before the token it stands for.
                      EXPIRES_AT: {"N": str(int(-(-expires_at // 1)))}},
                ConditionExpression="attribute_not_exists(#n) OR #e < :now",
                ExpressionAttributeNames={"#n": NAME, "#e": EXPIRES_AT},
                ExpressionAttributeValues={":now": {"N": repr(float(now))}},
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True
