"""Who may call which MWAA Serverless operation on which workflow: IAM identity policies with
`airflow-serverless:<Operation>` actions, evaluated as for MWAA (core/authorization.py).

Resources: the workflow's ARN for every operation on a workflow, its runs and tags (CreateWorkflow
is checked against the ARN the new workflow gets, so `workflow/dev-*` limits the names a key may
create); `*` for ListWorkflows and CreateAirflowUiUrl. The Airflow UI then shows a caller only the
workflows it may GetWorkflow.
"""
from __future__ import annotations

from airdock.core.authorization import PolicySource, access_denied, evaluate
from airdock.core.ports import Caller
from airdock.core.serverless.identifiers import SERVICE


class WorkflowAccess:
    def __init__(self, policies: PolicySource) -> None:
        self.policies = policies

    def authorize(self, caller: Caller, operation: str, resource: str) -> None:
        """Return if allowed, else raise AccessDenied in AWS's wording."""
        policies = self.policies(caller)
        if policies is None:
            return
        action = f"{SERVICE}:{operation}"
        decision = evaluate(policies, action, resource)
        if decision != "Allow":
            raise access_denied(caller.principal_arn, action, resource, decision)

    def allows(self, caller: Caller, operation: str, resource: str) -> bool:
        policies = self.policies(caller)
        return policies is None or evaluate(policies, f"{SERVICE}:{operation}", resource) == "Allow"


class Unrestricted(WorkflowAccess):
    """For deployments where the front door already decided (API Gateway's IAM authorization on
    AWS evaluates the caller's real policies before the function runs)."""

    def __init__(self) -> None:
        super().__init__(lambda caller: None)
