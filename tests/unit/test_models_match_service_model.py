"""Specification: our request models enforce exactly the constraints of botocore's `mwaa` model.

botocore's service model is the contract. For every member of the request shapes below we probe
the pydantic field at each boundary the model states (min/max length, min/max value, list and map
sizes, pattern, enum) and check that it rejects exactly what lies outside and accepts what lies
inside. A pattern is compared by value: a value that breaks every pattern ("\\n") must be refused
with our `aws_pattern` error carrying the model's very pattern string.

Documented differences (and only these):
- TagValue: MWAA accepts empty tag values (min 0) although the model says min 1.
- RestApiPath: longer than the model's 64 characters, because the Amazon provider's DAG-run waiter
  sends longer paths (`/dags/{dag_id}/dagRuns/manual__<timestamp>`).
- IdentityCenterConfiguration / Teams: newer MWAA members Airdock does not implement yet.
"""
from __future__ import annotations

import typing
from typing import Any

import pytest
from pydantic import BaseModel

from airdock.core import models as m
from airdock.core.operations import OPERATIONS
from support.service_model_probe import ShapeProbe, field_annotation, load_service_model, validator

# (shape name, constraint) pairs where Airdock deliberately differs from the service model.
DOCUMENTED_DIFFERENCES = {("TagValue", "min"), ("RestApiPath", "max")}
# Members of the service model Airdock does not implement yet (ignored like unknown members).
NOT_IMPLEMENTED_MEMBERS = {"IdentityCenterConfiguration", "Teams"}

INPUTS: dict[str, type[BaseModel]] = {
    "CreateEnvironmentInput": m.CreateEnvironmentInput,
    "UpdateEnvironmentInput": m.UpdateEnvironmentInput,
    "TagResourceInput": m.TagResourceInput,
    "UntagResourceInput": m.UntagResourceInput,
    "ListEnvironmentsInput": m.ListEnvironmentsInput,
    "InvokeRestApiRequest": m.InvokeRestApiInput,
}

# A valid value for each string shape (used to fill lists and maps around a probe).
EXAMPLES: dict[str, Any] = {
    "SubnetId": "subnet-a",
    "SecurityGroupId": "sg-1",
    "TagKey": "k",
    "TagValue": "v",
    "ConfigKey": "core.parallelism",
    "ConfigValue": "4",
}
MODEL = load_service_model("mwaa", "2020-07-01")
PROBE = ShapeProbe(MODEL, EXAMPLES, DOCUMENTED_DIFFERENCES, NOT_IMPLEMENTED_MEMBERS)


def service_model() -> dict[str, Any]:
    return MODEL


def shape(name: str) -> dict[str, Any]:
    return PROBE.shape(name)


@pytest.mark.parametrize("shape_name", sorted(INPUTS))
def test_request_model_enforces_exactly_the_service_model_constraints(shape_name: str) -> None:
    # Given botocore's shape and our pydantic model for the same operation input
    # When every stated boundary is probed through our model
    findings: list[str] = []
    PROBE.check_structure(shape_name, INPUTS[shape_name], shape_name, findings)
    # Then our model agrees with the service model everywhere
    assert findings == []


@pytest.mark.parametrize("shape_name", sorted(INPUTS))
def test_request_model_has_no_member_the_service_model_lacks(shape_name: str) -> None:
    members = set(shape(shape_name)["members"])
    assert set(INPUTS[shape_name].model_fields) <= members


def test_tag_values_may_be_empty_the_one_documented_difference() -> None:
    # Given MWAA's observed behaviour (empty tag values accepted) vs the model's TagValue min 1
    assert shape("TagValue")["min"] == 1
    # Then our TagMap accepts an empty value
    assert validator(field_annotation(m.TagResourceInput, "Tags"))({"k": ""}) == []


def test_every_service_model_operation_is_in_the_operations_table_with_the_same_binding() -> None:
    ours = {op.name: (op.method, op.path) for op in OPERATIONS}
    theirs = {
        name: (op["http"]["method"], op["http"]["requestUri"].split("?")[0])
        for name, op in service_model()["operations"].items()
    }
    assert ours == theirs


def test_operations_table_path_and_query_parameters_match_the_service_model() -> None:
    for op in OPERATIONS:
        spec = service_model()["operations"][op.name]
        members = shape(spec["input"]["shape"])["members"]
        uri = {n for n, r in members.items() if r.get("location") == "uri"}
        query = {r.get("locationName", n) for n, r in members.items() if r.get("location") == "querystring"}
        assert set(op.path_params) == uri, op.name
        assert set(op.query_params) == query, op.name


def test_environment_status_enum_matches_the_service_model() -> None:
    enum = set(shape("EnvironmentStatus")["enum"])
    assert set(typing.get_args(m.EnvironmentStatusT)) == enum


def test_rest_api_paths_longer_than_the_models_64_are_accepted_for_the_providers_waiter() -> None:
    assert shape("RestApiPath")["max"] == 64
    path = "/dags/example_hello/dagRuns/manual__2026-11-29T20:08:24.184654+00:00"
    assert len(path) > 64
    assert validator(field_annotation(m.InvokeRestApiInput, "Path"))(path) == []
