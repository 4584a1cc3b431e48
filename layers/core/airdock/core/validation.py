"""Turn pydantic's findings into MWAA's ValidationException wording.

AWS services phrase constraint failures one way ("1 validation error detected: Value 'x' at
'name' failed to satisfy constraint: Member must ..."); users grep for that, so we keep it.
"""
from __future__ import annotations

from typing import Any, TypeVar

import pydantic

from airdock.core.errors import ValidationError

M = TypeVar("M", bound=pydantic.BaseModel)

# Values of these members are secrets (the model marks them sensitive): never echo them.
_MAPS = {"tags", "airflowConfigurationOptions", "queryParameters", "body"}
_SENSITIVE = {"airflowConfigurationOptions", "body", "restApiResponse"}


def _camel(part: str) -> str:
    return part[:1].lower() + part[1:]


def _location(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    if loc and loc[-1] == "[key]":
        # A bad map key is reported at the map itself ("at 'tags' ... Map keys must satisfy
        # constraint"), as AWS does; the key is the offending value, not part of the location.
        loc = loc[:-2]
    for item in loc:
        if isinstance(item, int):
            parts.append(f"{item + 1}")
        else:
            # Map keys are the user's own words: only member names are camel-cased, as AWS does.
            parts.append(str(item) if parts and parts[-1] in _MAPS else _camel(str(item)))
    return ".".join(parts)


def _constraint(error: dict[str, Any]) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    in_key = bool(error["loc"]) and error["loc"][-1] == "[key]"
    text: str
    if kind == "missing":
        text = "Member must not be null"
    elif kind == "aws_pattern":
        text = f"Member must satisfy regular expression pattern: {ctx['pattern']}"
    elif kind == "string_too_short":
        text = f"Member must have length greater than or equal to {ctx['min_length']}"
    elif kind == "string_too_long":
        text = f"Member must have length less than or equal to {ctx['max_length']}"
    elif kind == "too_short":
        text = f"Member must have length greater than or equal to {ctx['min_length']}"
    elif kind == "too_long":
        text = f"Member must have length less than or equal to {ctx['max_length']}"
    elif kind == "greater_than_equal":
        text = f"Member must have value greater than or equal to {ctx['ge']}"
    elif kind == "less_than_equal":
        text = f"Member must have value less than or equal to {ctx['le']}"
    elif kind == "literal_error":
        allowed = str(ctx.get("expected", "")).replace("'", "")
        text = f"Member must satisfy enum value set: [{allowed.replace(' or ', ', ')}]"
    elif kind in ("int_type", "int_from_float", "int_parsing"):
        text = "Member must be an integer"
    elif kind in ("float_type", "float_parsing"):
        text = "Member must be a number"
    elif kind == "bool_type":
        text = "Member must be a boolean"
    elif kind == "string_type":
        text = "Member must be a string"
    elif kind in ("list_type", "tuple_type"):
        text = "Member must be a list"
    elif kind in ("dict_type", "model_type", "model_attributes_type"):
        text = "Member must be a structure"
    else:
        text = f"Member is invalid ({error.get('msg', kind)})"
    return f"Map keys must satisfy constraint: [{text}]" if in_key else text


def _value(error: dict[str, Any], where: str) -> str:
    if error["type"] == "missing":
        return "Value null"
    if where.split(".")[0] in _SENSITIVE:
        return "Value"
    value = error.get("input")
    if isinstance(value, (dict, list)):
        return "Value"
    return f"Value '{value}'"


def message_for(errors: list[dict[str, Any]]) -> str:
    parts = []
    for error in errors:
        where = _location(error["loc"])
        parts.append(f"{_value(error, where)} at '{where}' failed to satisfy constraint: {_constraint(error)}")
    noun = "error" if len(parts) == 1 else "errors"
    return f"{len(parts)} validation {noun} detected: " + "; ".join(parts)


def parse(model: type[M], data: Any) -> M:
    """Validate untrusted input against a request model or raise MWAA's ValidationException."""
    if not isinstance(data, dict):
        raise ValidationError("Request body must be a JSON object.")
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ValidationError(message_for(exc.errors(include_url=False))) from None
