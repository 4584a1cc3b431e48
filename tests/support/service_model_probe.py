"""Probe pydantic request models against a botocore service model, boundary by boundary.

`ShapeProbe(model).check_structure(shape_name, pydantic_model)` lists every disagreement: a min or
max length, value, list or map size the model states that our model does not enforce (or the
reverse), a pattern other than the model's very string, a missing or extra required member.
"""
from __future__ import annotations

import gzip
import json
import typing
from pathlib import Path
from typing import Annotated, Any, Callable

import botocore
import pydantic
from pydantic import BaseModel, ConfigDict, TypeAdapter

NEWLINE = "\n"  # `.` does not match it and no character class here contains it


def load_service_model(service: str, version: str) -> dict[str, Any]:
    path = Path(botocore.__file__).parent / "data" / service / version / "service-2.json.gz"
    with gzip.open(path) as handle:
        return json.load(handle)


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


class ShapeProbe:
    def __init__(self, model: dict[str, Any], examples: dict[str, Any], differences: set[tuple[str, str]] = set(),
                 not_implemented: set[str] = set()) -> None:
        self.model = model
        self.examples = examples
        self.differences = differences
        self.not_implemented = not_implemented

    def shape(self, name: str) -> dict[str, Any]:
        return self.model["shapes"][name]

    def check_shape(self, shape_name: str, validate: Validate, where: str, findings: list[str]) -> None:
        """Probe one member whose service-model shape is `shape_name` through `validate`."""
        spec = self.shape(shape_name)
        kind = spec["type"]
        lo, hi = spec.get("min"), spec.get("max")
        if (shape_name, "min") in self.differences:
            lo = None
        if (shape_name, "max") in self.differences:
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
            example = self.examples[member]
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
            self.check_shape(member, lambda v: validate([v, *filler]), f"{where}[]", findings)
        elif kind == "map":
            key_shape, value_shape = spec["key"]["shape"], spec["value"]["shape"]
            key_example, value_example = self.examples[key_shape], self.examples[value_shape]
            entries = lambda n: {f"{key_example}{i}": value_example for i in range(n)}  # noqa: E731
            if lo is not None and lo > 0 and "too_short" not in types_of(validate(entries(lo - 1))):
                findings.append(f"{where}: accepts {lo - 1} entries < min {lo}")
            if hi is not None:
                if "too_long" not in types_of(validate(entries(hi + 1))):
                    findings.append(f"{where}: accepts {hi + 1} entries > max {hi}")
                if validate(entries(hi)):
                    findings.append(f"{where}: refuses {hi} entries = max")
            self.check_shape(key_shape, lambda k: validate({k: value_example}), f"{where}{{key}}", findings)
            self.check_shape(value_shape, lambda v: validate({key_example: v}), f"{where}{{value}}", findings)
        # structures are checked member by member by the caller; documents/booleans carry no constraint

    def check_structure(self, shape_name: str, model: type[BaseModel], where: str, findings: list[str]) -> None:
        spec = self.shape(shape_name)
        required = set(spec.get("required", []))
        for member, ref in spec["members"].items():
            if member in self.not_implemented:
                continue
            path = f"{where}.{member}"
            if member not in model.model_fields:
                findings.append(f"{path}: missing from {model.__name__}")
                continue
            info = model.model_fields[member]
            if (member in required) != info.is_required():
                findings.append(f"{path}: required={info.is_required()} but the model says {member in required}")
            target = self.shape(ref["shape"])
            annotation = field_annotation(model, member)
            if target["type"] == "structure" and not target.get("document"):
                self.check_structure(ref["shape"], unwrap_model(annotation), path, findings)
            else:
                self.check_shape(ref["shape"], validator(annotation), path, findings)
