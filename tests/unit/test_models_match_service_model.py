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

import gzip
import json
import typing
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Callable

import botocore
import pydantic
import pytest
from pydantic import BaseModel, ConfigDict, TypeAdapter

from airdock.core import models as m
from airdock.core.operations import OPERATIONS

MODEL_PATH = Path(botocore.__file__).parent / "data" / "mwaa" / "2020-07-01" / "service-2.json.gz"

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
NEWLINE = "\n"  # `.` does not match it and no character class here contains it


@lru_cache(maxsize=1)
def service_model() -> dict[str, Any]:
    with gzip.open(MODEL_PATH) as handle:
        return json.load(handle)


def shape(name: str) -> dict[str, Any]:
    return service_model()["shapes"][name]


def strict_adapter(annotation: Any) -> TypeAdapter:
    return TypeAdapter(annotation, config=ConfigDict(strict=True))


def field_annotation(model: type[BaseModel], member: str) -> Any:
    info = model.model_fields[member]
    return Annotated[info.annotation, *info.metadata] if info.metadata else info.annotation


def unwrap_model(annotation: Any) -> type[BaseModel]:
    """The BaseModel class inside Optional[...] / Annotated[...]."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        try:
            return unwrap_model(arg)
        except LookupError:
            continue
    raise LookupError(annotation)


Validate = Callable[[Any], list[dict[str, Any]]]


def validator(annotation: Any) -> Validate:
    adapter = strict_adapter(annotation)

    def run(value: Any) -> list[dict[str, Any]]:
        try:
            adapter.validate_python(value)
        except pydantic.ValidationError as exc:
            return exc.errors(include_url=False)
        return []

    return run


def types_of(errors: list[dict[str, Any]]) -> set[str]:
    return {e["type"] for e in errors}


def check_shape(shape_name: str, validate: Validate, where: str, findings: list[str]) -> None:
    """Probe one member whose service-model shape is `shape_name` through `validate`."""
    spec = shape(shape_name)
    kind = spec["type"]
    lo, hi = spec.get("min"), spec.get("max")
    if (shape_name, "min") in DOCUMENTED_DIFFERENCES:
        lo = None
    if (shape_name, "max") in DOCUMENTED_DIFFERENCES:
        hi = None
    if kind == "string" and "enum" in spec:
        for value in spec["enum"]:
            if validate(value):
                findings.append(f"{where}: enum value {value!r} refused")
        if not {"literal_error"} <= types_of(validate("NOT_AN_ENUM_VALUE")):
            findings.append(f"{where}: accepts a value outside enum {spec['enum']}")
    elif kind == "string":
        if lo is not None:
            if lo > 0 and "string_too_short" not in types_of(validate("a" * (lo - 1))):
                findings.append(f"{where}: accepts length {lo - 1} < min {lo}")
            if "string_too_short" in types_of(validate("a" * lo)):
                findings.append(f"{where}: refuses length {lo} = min")
        if hi is not None:
            if "string_too_long" not in types_of(validate("a" * (hi + 1))):
                findings.append(f"{where}: accepts length {hi + 1} > max {hi}")
            if "string_too_long" in types_of(validate("a" * hi)):
                findings.append(f"{where}: refuses length {hi} = max")
        if "pattern" in spec:
            errors = validate(NEWLINE * max(lo or 1, 1))
            patterns = {e.get("ctx", {}).get("pattern") for e in errors if e["type"] == "aws_pattern"}
            if patterns != {spec["pattern"]}:
                findings.append(f"{where}: pattern {patterns or 'none'} != model {spec['pattern']!r}")
        elif validate(NEWLINE * max(lo or 1, 1)):
            findings.append(f"{where}: has a pattern the model does not state")
    elif kind == "integer":
        if lo is not None:
            if "greater_than_equal" not in types_of(validate(lo - 1)):
                findings.append(f"{where}: accepts {lo - 1} < min {lo}")
            if validate(lo):
                findings.append(f"{where}: refuses min {lo}")
        elif validate(-1000):
            findings.append(f"{where}: has a minimum the model does not state")
        if hi is not None:
            if "less_than_equal" not in types_of(validate(hi + 1)):
                findings.append(f"{where}: accepts {hi + 1} > max {hi}")
            if validate(hi):
                findings.append(f"{where}: refuses max {hi}")
        elif validate(100000):
            findings.append(f"{where}: has a maximum the model does not state")
    elif kind == "list":
        member = spec["member"]["shape"]
        example = EXAMPLES[member]
        low = lo or 0
        if lo is not None and lo > 0 and "too_short" not in types_of(validate([example] * (lo - 1))):
            findings.append(f"{where}: accepts {lo - 1} items < min {lo}")
        if validate([example] * low):
            findings.append(f"{where}: refuses {low} items = min")
        if hi is not None:
            if "too_long" not in types_of(validate([example] * (hi + 1))):
                findings.append(f"{where}: accepts {hi + 1} items > max {hi}")
            if validate([example] * hi):
                findings.append(f"{where}: refuses {hi} items = max")
        filler = [example] * max(low - 1, 0)
        check_shape(member, lambda v: validate([v, *filler]), f"{where}[]", findings)
    elif kind == "map":
        key_shape, value_shape = spec["key"]["shape"], spec["value"]["shape"]
        key_example, value_example = EXAMPLES[key_shape], EXAMPLES[value_shape]
        entries = lambda n: {f"{key_example}{i}": value_example for i in range(n)}  # noqa: E731
        if lo is not None and lo > 0 and "too_short" not in types_of(validate(entries(lo - 1))):
            findings.append(f"{where}: accepts {lo - 1} entries < min {lo}")
        if hi is not None:
            if "too_long" not in types_of(validate(entries(hi + 1))):
                findings.append(f"{where}: accepts {hi + 1} entries > max {hi}")
            if validate(entries(hi)):
                findings.append(f"{where}: refuses {hi} entries = max")
        check_shape(key_shape, lambda k: validate({k: value_example}), f"{where}{{key}}", findings)
        check_shape(value_shape, lambda v: validate({key_example: v}), f"{where}{{value}}", findings)
    # structures are checked member by member by the caller; documents/booleans carry no constraint


def check_structure(shape_name: str, model: type[BaseModel], where: str, findings: list[str]) -> None:
    spec = shape(shape_name)
    required = set(spec.get("required", []))
    for member, ref in spec["members"].items():
        if member in NOT_IMPLEMENTED_MEMBERS:
            continue
        path = f"{where}.{member}"
        if member not in model.model_fields:
            findings.append(f"{path}: missing from {model.__name__}")
            continue
        info = model.model_fields[member]
        if (member in required) != info.is_required():
            findings.append(f"{path}: required={info.is_required()} but the model says {member in required}")
        target = shape(ref["shape"])
        annotation = field_annotation(model, member)
        if target["type"] == "structure" and not target.get("document"):
            check_structure(ref["shape"], unwrap_model(annotation), path, findings)
        else:
            check_shape(ref["shape"], validator(annotation), path, findings)


@pytest.mark.parametrize("shape_name", sorted(INPUTS))
def test_request_model_enforces_exactly_the_service_model_constraints(shape_name: str) -> None:
    # Given botocore's shape and our pydantic model for the same operation input
    # When every stated boundary is probed through our model
    findings: list[str] = []
    check_structure(shape_name, INPUTS[shape_name], shape_name, findings)
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
