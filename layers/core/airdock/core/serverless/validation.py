"""Request parsing: pydantic's findings as the model's ValidationException (Message in AWS's
"1 validation error detected: ..." wording, Reason fieldValidationFailed, one FieldList entry per
member, named by its path in the request, e.g. `DefinitionS3Location.Bucket`)."""
from __future__ import annotations

from typing import Any, TypeVar

import pydantic

from airdock.core.serverless.errors import ServerlessValidationError
from airdock.core.validation import message_for

M = TypeVar("M", bound=pydantic.BaseModel)

# Members whose values are secrets (the model marks them sensitive): never echoed.
_SENSITIVE = ("Environment", "OverrideParameters")


def _path(loc: tuple[Any, ...]) -> str:
    if loc and loc[-1] == "[key]":  # a bad map key is the map's fault, as AWS reports it
        loc = loc[:-2]
    parts: list[str] = []
    for item in loc:
        parts.append(f"[{item}]" if isinstance(item, int) else str(item))
    return ".".join(parts).replace(".[", "[")


def parse(model: type[M], data: Any) -> M:
    if not isinstance(data, dict):
        raise ServerlessValidationError("The request body must be a JSON object.", "cannotParse")
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        errors = exc.errors(include_url=False)
        for error in errors:
            if error["loc"] and error["loc"][0] in _SENSITIVE:
                error["input"] = {}  # rendered as "Value", never the secret itself
            if error["type"] == "value_error":
                error["type"], error["msg"] = "union", str(error.get("ctx", {}).get("error", error["msg"]))
        fields = [(_path(e["loc"]) or model.__name__, message_for([e]).split(": ", 1)[1]) for e in errors]
        raise ServerlessValidationError(message_for(errors), "fieldValidationFailed", fields) from None
