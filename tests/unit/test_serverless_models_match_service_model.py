"""Specification: the MWAA Serverless request models enforce exactly botocore's `mwaa-serverless`
model (2024-07-26): every stated length, value, size, pattern and enum, and the required members.
"""
from __future__ import annotations

import typing

import pytest

from airdock.core.serverless import models as m
from support.service_model_probe import ShapeProbe, load_service_model

MODEL = load_service_model("mwaa-serverless", "2024-07-26")
EXAMPLES = {"SecurityGroupString": "sg-1", "SubnetString": "subnet-a", "EnvironmentVariableKey": "A",
            "EnvironmentVariableValue": "v", "TagKey": "k", "TagValue": "v", "String": "s", "Document": {},
            "IdString": "id"}
PROBE = ShapeProbe(MODEL, EXAMPLES)


def input_shape(operation: str) -> str:
    return MODEL["operations"][operation]["input"]["shape"]


def test_every_operation_of_the_service_model_has_a_request_model() -> None:
    assert set(m.REQUESTS) == set(MODEL["operations"])


@pytest.mark.parametrize("operation", sorted(m.REQUESTS))
def test_request_model_enforces_exactly_the_service_model_constraints(operation: str) -> None:
    findings: list[str] = []
    PROBE.check_structure(input_shape(operation), m.REQUESTS[operation], operation, findings)
    assert findings == []


@pytest.mark.parametrize("operation", sorted(m.REQUESTS))
def test_request_model_has_no_member_the_service_model_lacks(operation: str) -> None:
    assert set(m.REQUESTS[operation].model_fields) <= set(MODEL["shapes"][input_shape(operation)]["members"])


@pytest.mark.parametrize(("ours", "shape"), [(m.WorkflowRunStatus, "WorkflowRunStatus"),
                                             (m.TaskInstanceStatus, "TaskInstanceStatus"), (m.RunType, "RunType"),
                                             (m.WorkflowStatus, "WorkflowStatus")])
def test_status_enums_match_the_service_model(ours: object, shape: str) -> None:
    assert set(typing.get_args(ours)) == set(MODEL["shapes"][shape]["enum"])


def test_the_operations_table_of_the_handler_is_the_service_models() -> None:
    from airdock.local.functions import load_function

    assert set(load_function("serverless_api").OPERATIONS) == set(MODEL["operations"])


def test_errors_we_render_are_error_shapes_of_the_model_with_their_required_members() -> None:
    from airdock.core.serverless.errors import ConflictError, NotFoundError, QuotaExceededError, field_error

    for error in (field_error("Name", "bad"), ConflictError("c", "wf-abcdefghij", "Workflow"),
                  NotFoundError("n", "x", "Workflow"), QuotaExceededError("q", "x", "Workflow", "WorkflowsPerAccount")):
        shape = MODEL["shapes"][error.code]
        assert shape.get("exception") is True
        body = {"Message": error.message, **error.fields}
        assert set(shape.get("required", [])) <= set(body), error.code
        assert set(error.fields) <= set(shape["members"]), error.code
