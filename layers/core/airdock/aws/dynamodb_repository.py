"""EnvironmentRepository on DynamoDB (the `EnvironmentsTable` of template.yaml).

Item: `Name` (S, partition key), `Version` (N), `Document` (S, `EnvironmentRecord` as JSON) and
`Listing` (S, always "environment"), the partition key of the `ByName` GSI whose sort key is `Name`.

Ordered listing: a Scan returns items in hash order, so ListEnvironments pagination
(`list_names(limit, after)` = names in ascending order strictly after `after`) Queries the
`ByName` GSI instead: one constant partition, sorted by Name, KEYS_ONLY. A page costs one small
Query whatever the table size. Trade-offs: (1) GSIs are eventually consistent, so a record created
a few milliseconds ago may be missing from a listing (GetEnvironment is strongly consistent); (2) all
index writes go to one GSI partition (~1000 writes/s), far above what MWAA-style control-plane
traffic produces. The alternative (Scan all keys, sort in memory) is consistent but costs a full
table scan per page.
"""
from __future__ import annotations

from typing import Any

from airdock.core.errors import AlreadyExists, ConcurrentModification
from airdock.core.ports import EnvironmentRecord

# Must match EnvironmentsTable in template.yaml (the contract tests build their table from it).
NAME = "Name"
VERSION = "Version"
DOCUMENT = "Document"
LISTING = "Listing"
LISTING_VALUE = "environment"
BY_NAME_INDEX = "ByName"


class DynamoDbEnvironmentRepository:
    def __init__(self, table_name: str, client: Any = None) -> None:
        """`client`: a boto3 DynamoDB client (or a `boto3.resource("dynamodb")`, whose low-level
        client is used); default `boto3.client("dynamodb")`. boto3 clients are thread-safe."""
        if client is None:
            import boto3

            client = boto3.client("dynamodb")
        elif not hasattr(client, "put_item"):
            client = client.meta.client  # a ServiceResource
        self.table_name = table_name
        self.client = client

    # ------------------------------------------------------------------ port

    def put_new(self, record: EnvironmentRecord) -> EnvironmentRecord:
        saved = record.model_copy(update={"version": 1}, deep=True)
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item={
                    NAME: {"S": saved.name},
                    VERSION: {"N": str(saved.version)},
                    DOCUMENT: {"S": saved.model_dump_json()},
                    LISTING: {"S": LISTING_VALUE},
                },
                ConditionExpression="attribute_not_exists(#n)",
                ExpressionAttributeNames={"#n": NAME},
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            raise AlreadyExists(saved.name) from None
        return saved

    def get(self, name: str) -> EnvironmentRecord | None:
        item = self.client.get_item(
            TableName=self.table_name,
            Key={NAME: {"S": name}},
            ConsistentRead=True,
            ProjectionExpression="#v, #d",
            ExpressionAttributeNames={"#v": VERSION, "#d": DOCUMENT},
        ).get("Item")
        if item is None:
            return None
        record = EnvironmentRecord.model_validate_json(item[DOCUMENT]["S"])
        record.version = int(item[VERSION]["N"])
        return record

    def list_names(self, limit: int, after: str | None = None) -> list[str]:
        names: list[str] = []
        if limit <= 0:
            return names
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": BY_NAME_INDEX,
            "KeyConditionExpression": "#l = :l",
            "ExpressionAttributeNames": {"#l": LISTING, "#n": NAME},
            "ExpressionAttributeValues": {":l": {"S": LISTING_VALUE}},
            "ProjectionExpression": "#n",
            "ScanIndexForward": True,
        }
        if after is not None:
            request["KeyConditionExpression"] += " AND #n > :after"
            request["ExpressionAttributeValues"][":after"] = {"S": after}
        while len(names) < limit:
            # No filter expression, so Limit bounds the items returned; loop only for the 1 MB cap.
            page = self.client.query(**request, Limit=limit - len(names))
            names.extend(item[NAME]["S"] for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return names[:limit]

    def replace(self, record: EnvironmentRecord) -> EnvironmentRecord:
        expected = record.version
        saved = record.model_copy(update={"version": expected + 1}, deep=True)
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={NAME: {"S": saved.name}},
                # `#v = :expected` is false when the item is gone, so a vanished record fails too.
                ConditionExpression="#v = :expected",
                UpdateExpression="SET #v = :next, #d = :doc, #l = :l",
                ExpressionAttributeNames={"#v": VERSION, "#d": DOCUMENT, "#l": LISTING},
                ExpressionAttributeValues={
                    ":expected": {"N": str(expected)},
                    ":next": {"N": str(saved.version)},
                    ":doc": {"S": saved.model_dump_json()},
                    ":l": {"S": LISTING_VALUE},
                },
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            raise ConcurrentModification(
                f"Environment {record.name} changed since version {expected} was read (or is gone)."
            ) from None
        return saved

    def delete(self, name: str, version: int) -> None:
        try:
            self.client.delete_item(
                TableName=self.table_name,
                Key={NAME: {"S": name}},
                # Already gone is success (idempotent last step of a delete workflow).
                ConditionExpression="attribute_not_exists(#n) OR #v = :expected",
                ExpressionAttributeNames={"#n": NAME, "#v": VERSION},
                ExpressionAttributeValues={":expected": {"N": str(version)}},
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            raise ConcurrentModification(f"Environment {name} changed since version {version} was read.") from None
