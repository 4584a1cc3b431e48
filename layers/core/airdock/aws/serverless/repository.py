"""WorkflowRepository on DynamoDB (the `WorkflowsTable` of template.yaml), one table:

| item                | PK                 | SK                  | also                                   |
|---------------------|--------------------|---------------------|----------------------------------------|
| workflow            | `WF#{id}`          | `META`              | `Listing`="workflow", `Name` (ByName)  |
| name claim          | `NAME#{name}`      | `CLAIM`             | the workflow id                        |
| create ClientToken  | `TOKEN#{token}`    | `CLAIM`             | the workflow id                        |
| version             | `WF#{id}`          | `VER#{number:06}`   | `Version`                              |
| run                 | `WF#{id}`          | `RUN#{run id}`      | `RunsOf`+`Created` (Runs), `Active`    |
| run ClientToken     | `WF#{id}`          | `RTOKEN#{token}`    | the run id                             |

Names and tokens are claimed in the same transaction as the workflow or run they belong to, so a
second create of a name (or replay of a token) fails atomically. `Active` (the sparse ActiveRuns
index) is set only while a run is not final. Documents are the records' JSON; `RecordVersion` is
the optimistic-concurrency counter, checked by every conditional write.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from airdock.core.errors import AlreadyExists, ConcurrentModification
from airdock.core.serverless.records import RunRecord, VersionRecord, WorkflowRecord

PK, SK, DOC, REV = "PK", "SK", "Document", "RecordVersion"
BY_NAME, RUNS, ACTIVE = "ByName", "Runs", "ActiveRuns"


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _sortable(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")


class DynamoDbWorkflowRepository:
    def __init__(self, table_name: str, client: Any = None) -> None:
        if client is None:
            import boto3

            client = boto3.client("dynamodb")
        self.table = table_name
        self.client = client

    # ---- items -----------------------------------------------------------------------------------

    def _workflow_item(self, workflow: WorkflowRecord) -> dict[str, Any]:
        return {PK: _s(f"WF#{workflow.workflow_id}"), SK: _s("META"), "Listing": _s("workflow"),
                "Name": _s(workflow.name), REV: _n(workflow.record_version), DOC: _s(workflow.model_dump_json())}

    def _version_item(self, version: VersionRecord) -> dict[str, Any]:
        return {PK: _s(f"WF#{version.workflow_id}"), SK: _s(f"VER#{version.number:06d}"),
                "Version": _s(version.version), DOC: _s(version.model_dump_json())}

    def _run_item(self, run: RunRecord) -> dict[str, Any]:
        item = {PK: _s(f"WF#{run.workflow_id}"), SK: _s(f"RUN#{run.run_id}"), "RunsOf": _s(run.workflow_id),
                "Created": _s(f"{_sortable(run.created_at)}#{run.run_id}"), "RunVersion": _s(run.version),
                REV: _n(run.record_version), DOC: _s(run.model_dump_json())}
        if not run.final:
            item["Active"] = _s(f"{run.workflow_id}#{run.run_id}")
            item["ActiveKey"] = _s("active")
        return item

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        return self.client.get_item(TableName=self.table, Key={PK: _s(pk), SK: _s(sk)}, ConsistentRead=True).get("Item")

    def _query(self, **kwargs: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        limit = kwargs.pop("Limit", None)
        while True:
            page = self.client.query(TableName=self.table, **kwargs, **({"Limit": limit} if limit else {}))
            items += page.get("Items", [])
            if "LastEvaluatedKey" not in page or (limit and len(items) >= limit):
                return items[:limit] if limit else items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _transact(self, items: list[dict[str, Any]], conflict: Exception) -> None:
        try:
            self.client.transact_write_items(TransactItems=items)
        except self.client.exceptions.TransactionCanceledException:
            raise conflict from None

    # ---- workflows -------------------------------------------------------------------------------

    def create_workflow(self, workflow: WorkflowRecord, version: VersionRecord) -> WorkflowRecord:
        saved = workflow.model_copy(update={"record_version": 1})
        new = "attribute_not_exists(PK)"
        items = [
            {"Put": {"TableName": self.table, "Item": self._workflow_item(saved), "ConditionExpression": new}},
            {"Put": {"TableName": self.table, "Item": self._version_item(version), "ConditionExpression": new}},
            {"Put": {"TableName": self.table, "ConditionExpression": new, "Item": {
                PK: _s(f"NAME#{saved.name}"), SK: _s("CLAIM"), "WorkflowId": _s(saved.workflow_id)}}},
        ]
        if saved.client_token is not None:
            items.append({"Put": {"TableName": self.table, "ConditionExpression": new, "Item": {
                PK: _s(f"TOKEN#{saved.client_token}"), SK: _s("CLAIM"), "WorkflowId": _s(saved.workflow_id)}}})
        self._transact(items, AlreadyExists(saved.name))
        return saved

    def get_workflow(self, workflow_id: str) -> WorkflowRecord | None:
        return _workflow(self._get(f"WF#{workflow_id}", "META"))

    def find_workflow(self, *, name: str | None = None, client_token: str | None = None) -> WorkflowRecord | None:
        claim = self._get(f"NAME#{name}" if name is not None else f"TOKEN#{client_token}", "CLAIM")
        return self.get_workflow(claim["WorkflowId"]["S"]) if claim else None

    def list_workflows(self, limit: int, after: str | None = None) -> list[WorkflowRecord]:
        condition = "Listing = :l" + (" AND #n > :after" if after is not None else "")
        values = {":l": _s("workflow"), **({":after": _s(after)} if after is not None else {})}
        keys = self._query(IndexName=BY_NAME, KeyConditionExpression=condition, ExpressionAttributeValues=values,
                           **({"ExpressionAttributeNames": {"#n": "Name"}} if after is not None else {}), Limit=limit)
        found = [self.get_workflow(k[PK]["S"][3:]) for k in keys]
        return [w for w in found if w is not None]

    def count_workflows(self) -> int:
        total, kwargs = 0, {}
        while True:
            page = self.client.query(TableName=self.table, IndexName=BY_NAME, KeyConditionExpression="Listing = :l",
                                     ExpressionAttributeValues={":l": _s("workflow")}, Select="COUNT", **kwargs)
            total += page["Count"]
            if "LastEvaluatedKey" not in page:
                return total
            kwargs = {"ExclusiveStartKey": page["LastEvaluatedKey"]}

    def _put_workflow_item(self, workflow: WorkflowRecord) -> tuple[dict[str, Any], WorkflowRecord]:
        saved = workflow.model_copy(update={"record_version": workflow.record_version + 1})
        return {"Put": {"TableName": self.table, "Item": self._workflow_item(saved),
                        "ConditionExpression": f"{REV} = :rev",
                        "ExpressionAttributeValues": {":rev": _n(workflow.record_version)}}}, saved

    def put_workflow(self, workflow: WorkflowRecord) -> WorkflowRecord:
        put, saved = self._put_workflow_item(workflow)
        self._transact([put], ConcurrentModification(f"workflow {workflow.workflow_id} changed or is gone"))
        return saved

    def add_version(self, workflow: WorkflowRecord, version: VersionRecord) -> WorkflowRecord:
        put, saved = self._put_workflow_item(workflow)
        self._transact([put, {"Put": {"TableName": self.table, "Item": self._version_item(version),
                                      "ConditionExpression": "attribute_not_exists(PK)"}}],
                       ConcurrentModification(f"workflow {workflow.workflow_id} changed or is gone"))
        return saved

    def _versions(self, workflow_id: str) -> list[dict[str, Any]]:
        return self._query(KeyConditionExpression="PK = :pk AND begins_with(SK, :v)", ConsistentRead=True,
                           ExpressionAttributeValues={":pk": _s(f"WF#{workflow_id}"), ":v": _s("VER#")},
                           ScanIndexForward=False)

    def get_version(self, workflow_id: str, version: str) -> VersionRecord | None:
        item = next((i for i in self._versions(workflow_id) if i["Version"]["S"] == version), None)
        return VersionRecord.model_validate_json(item[DOC]["S"]) if item else None

    def list_versions(self, workflow_id: str, limit: int, before: int | None = None) -> list[VersionRecord]:
        found = [VersionRecord.model_validate_json(i[DOC]["S"]) for i in self._versions(workflow_id)]
        return [v for v in found if before is None or v.number < before][:limit]

    def delete_version(self, workflow_id: str, version: str) -> None:
        for item in self._versions(workflow_id):
            if item["Version"]["S"] == version:
                self.client.delete_item(TableName=self.table, Key={PK: item[PK], SK: item[SK]})

    def delete_workflow(self, workflow_id: str) -> None:
        workflow = self.get_workflow(workflow_id)
        items = self._query(KeyConditionExpression="PK = :pk", ExpressionAttributeValues={":pk": _s(f"WF#{workflow_id}")},
                            ConsistentRead=True, ProjectionExpression="PK, SK")
        keys = [{PK: i[PK], SK: i[SK]} for i in items]
        if workflow is not None:
            keys.append({PK: _s(f"NAME#{workflow.name}"), SK: _s("CLAIM")})
            if workflow.client_token is not None:
                keys.append({PK: _s(f"TOKEN#{workflow.client_token}"), SK: _s("CLAIM")})
        for start in range(0, len(keys), 25):
            self.client.batch_write_item(RequestItems={self.table: [{"DeleteRequest": {"Key": k}}
                                                                    for k in keys[start:start + 25]]})

    # ---- runs ------------------------------------------------------------------------------------

    def create_run(self, run: RunRecord) -> RunRecord:
        saved = run.model_copy(update={"record_version": 1})
        items = [{"Put": {"TableName": self.table, "Item": self._run_item(saved),
                          "ConditionExpression": "attribute_not_exists(PK)"}}]
        if saved.client_token is not None:
            items.append({"Put": {"TableName": self.table, "ConditionExpression": "attribute_not_exists(PK)", "Item": {
                PK: _s(f"WF#{saved.workflow_id}"), SK: _s(f"RTOKEN#{saved.client_token}"), "RunId": _s(saved.run_id)}}})
        self._transact(items, AlreadyExists(run.run_id))
        return saved

    def get_run(self, workflow_id: str, run_id: str) -> RunRecord | None:
        return _run(self._get(f"WF#{workflow_id}", f"RUN#{run_id}"))

    def find_run(self, workflow_id: str, client_token: str) -> RunRecord | None:
        claim = self._get(f"WF#{workflow_id}", f"RTOKEN#{client_token}")
        return self.get_run(workflow_id, claim["RunId"]["S"]) if claim else None

    def put_run(self, run: RunRecord) -> RunRecord:
        saved = run.model_copy(update={"record_version": run.record_version + 1})
        self._transact([{"Put": {"TableName": self.table, "Item": self._run_item(saved),
                                 "ConditionExpression": f"{REV} = :rev",
                                 "ExpressionAttributeValues": {":rev": _n(run.record_version)}}}],
                       ConcurrentModification(f"run {run.run_id} changed or is gone"))
        return saved

    def list_runs(self, workflow_id: str, limit: int, after: tuple[str, str] | None = None,
                  version: str | None = None) -> list[RunRecord]:
        condition = "RunsOf = :w"
        values: dict[str, Any] = {":w": _s(workflow_id)}
        if after is not None:
            created = _sortable(datetime.fromisoformat(after[0].replace("Z", "+00:00")))
            condition += " AND Created < :after"
            values[":after"] = _s(f"{created}#{after[1]}")
        kwargs: dict[str, Any] = {}
        if version is not None:
            kwargs = {"FilterExpression": "RunVersion = :v"}
            values[":v"] = _s(version)
        keys = self._query(IndexName=RUNS, KeyConditionExpression=condition, ExpressionAttributeValues=values,
                           ScanIndexForward=False, Limit=limit, **kwargs)
        found = [self.get_run(workflow_id, k[SK]["S"][4:]) for k in keys]
        return [r for r in found if r is not None]

    def active_runs(self, workflow_id: str | None = None) -> list[RunRecord]:
        values: dict[str, Any] = {":a": _s("active")}
        condition = "ActiveKey = :a"
        if workflow_id is not None:
            condition += " AND begins_with(Active, :w)"
            values[":w"] = _s(f"{workflow_id}#")
        keys = self._query(IndexName=ACTIVE, KeyConditionExpression=condition, ExpressionAttributeValues=values)
        found = [self.get_run(k[PK]["S"][3:], k[SK]["S"][4:]) for k in keys]
        return [r for r in found if r is not None and not r.final]

    def delete_runs(self, workflow_id: str, version: str | None = None) -> None:
        items = self._query(KeyConditionExpression="PK = :pk AND begins_with(SK, :r)", ConsistentRead=True,
                            ExpressionAttributeValues={":pk": _s(f"WF#{workflow_id}"), ":r": _s("R")})
        keys = [{PK: i[PK], SK: i[SK]} for i in items
                if version is None or i.get("RunVersion", {}).get("S") == version
                or (i[SK]["S"].startswith("RTOKEN#") and version is None)]
        for start in range(0, len(keys), 25):
            self.client.batch_write_item(RequestItems={self.table: [{"DeleteRequest": {"Key": k}}
                                                                    for k in keys[start:start + 25]]})


def _workflow(item: dict[str, Any] | None) -> WorkflowRecord | None:
    if item is None:
        return None
    return WorkflowRecord.model_validate_json(item[DOC]["S"]).model_copy(update={"record_version": int(item[REV]["N"])})


def _run(item: dict[str, Any] | None) -> RunRecord | None:
    if item is None:
        return None
    return RunRecord.model_validate_json(item[DOC]["S"]).model_copy(update={"record_version": int(item[REV]["N"])})
