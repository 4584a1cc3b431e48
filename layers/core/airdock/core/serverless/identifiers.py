"""Names, ARNs and ids of MWAA Serverless resources, in the shapes AWS gives them.

- workflow ARN `arn:{partition}:airflow-serverless:{region}:{account}:workflow/{Name}-{10 alnum}`;
- WorkflowVersion: 32 lowercase letters and digits (`7bcd36ce4d42f5cf23bfee67a0f816c6`);
- RunId: 15 letters and digits (`d58cxqdClpTVjeN`);
- TaskInstanceId: `ex_{run uuid}_{task id}` (`ex_5496697b-900d-…_create_bucket`).
"""
from __future__ import annotations

import re
import secrets
import string
import uuid
from dataclasses import dataclass

SERVICE = "airflow-serverless"
_LOWER_ALNUM = string.ascii_lowercase + string.digits
_ALNUM = string.ascii_letters + string.digits
_WORKFLOW_ID = re.compile(r"(?P<name>[a-zA-Z0-9][a-zA-Z0-9.\-_]{0,254})-(?P<suffix>[a-zA-Z0-9]{10})")
# Airflow's dag_id: letters, digits, dashes, dots and underscores, at most 250 characters.
_MAX_DAG_ID = 250


def new_suffix() -> str:
    return "".join(secrets.choice(_LOWER_ALNUM) for _ in range(10))


def new_version_id() -> str:
    return uuid.uuid4().hex


def new_run_id() -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(15))


def new_revision_id() -> str:
    return str(uuid.uuid4())


def task_instance_id(run_uuid: str, task_id: str) -> str:
    return f"ex_{run_uuid}_{task_id}"


@dataclass(frozen=True)
class Scope:
    """Where this installation lives: ARNs it makes and the only ones it owns."""

    partition: str
    region: str
    account_id: str

    def workflow_arn(self, workflow_id: str) -> str:
        return f"arn:{self.partition}:{SERVICE}:{self.region}:{self.account_id}:workflow/{workflow_id}"

    def workflow_id(self, arn: str) -> str | None:
        """`Name-suffix` of a workflow ARN of this installation, or None (another region, account
        or partition: no workflow of ours can have it)."""
        prefix = f"arn:{self.partition}:{SERVICE}:{self.region}:{self.account_id}:workflow/"
        if not arn.startswith(prefix):
            return None
        workflow_id = arn[len(prefix):]
        return workflow_id if _WORKFLOW_ID.fullmatch(workflow_id) else None

    def any_workflow_arn(self) -> str:
        return f"arn:{self.partition}:{SERVICE}:{self.region}:{self.account_id}:workflow/*"


def name_of(workflow_id: str) -> str:
    return workflow_id.rsplit("-", 1)[0]


def dag_id(workflow_id: str, version: str) -> str:
    """The Airflow DAG of one workflow version: readable (the workflow's name first) and unique
    (the ARN's suffix and the version id), within Airflow's 250 characters."""
    name, suffix = workflow_id.rsplit("-", 1)
    room = _MAX_DAG_ID - len(suffix) - len(version) - 3
    return f"{name[:room]}-{suffix}__{version}"
