"""OpenAPI 3 description of the API, generated from the request models and the operations table,
so it states what the server really accepts."""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from airdock import __version__
from airdock.core import constraints as c
from airdock.core.models import Environment
from airdock.core.operations import ALL_OPERATIONS, EXTENSIONS

_PATH_PARAM_SCHEMAS: dict[str, dict[str, Any]] = {
    "Name": {"type": "string", "minLength": 1, "maxLength": 80, "pattern": f"^{c.ENVIRONMENT_NAME}$"},
    "EnvironmentName": {"type": "string", "minLength": 1, "maxLength": 80, "pattern": f"^{c.ENVIRONMENT_NAME}$"},
    "ResourceArn": {"type": "string", "minLength": 1, "maxLength": 1224, "pattern": f"^{c.ENVIRONMENT_ARN}$"},
}
_QUERY_SCHEMAS: dict[str, dict[str, Any]] = {
    "MaxResults": {"type": "integer", "minimum": 1, "maximum": 25},
    "NextToken": {"type": "string", "maxLength": 2048},
    "tagKeys": {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 128}, "maxItems": 50},
}
_ERROR = {
    "type": "object",
    "properties": {"message": {"type": "string"}, "Message": {"type": "string"},
                   "RestApiStatusCode": {"type": "integer"}, "RestApiResponse": {}},
}


def _body_schema(model: type, path_params: tuple[str, ...]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    defs = schema.pop("$defs", {})
    for name in path_params:
        schema.get("properties", {}).pop(name, None)
        if name in schema.get("required", []):
            schema["required"].remove(name)
    if not schema.get("required"):
        schema.pop("required", None)
    return {"schema": schema, "defs": defs}


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    components: dict[str, Any] = {"Error": _ERROR}
    env_schema = Environment.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(env_schema.pop("$defs", {}))
    components["Environment"] = env_schema
    components["GetEnvironmentOutput"] = {
        "type": "object", "properties": {"Environment": {"$ref": "#/components/schemas/Environment"}},
    }
    paths: dict[str, Any] = {}
    for op in ALL_OPERATIONS:
        parameters = [
            {"name": p, "in": "path", "required": True, "schema": _PATH_PARAM_SCHEMAS[p]} for p in op.path_params
        ] + [
            {"name": q, "in": "query", "required": False, "schema": _QUERY_SCHEMAS[q],
             **({"style": "form", "explode": True} if q == "tagKeys" else {})}
            for q in op.query_params
        ]
        spec: dict[str, Any] = {
            "operationId": op.name,
            "parameters": parameters,
            "responses": {
                "200": {"description": "Success", "content": {"application/json": {"schema": op.output}}},
                **{
                    str(code): {"description": desc, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
                    for code, desc in ((400, "Client error"), (403, "Not authorized"), (404, "Not found"),
                                       (413, "Too large"), (500, "Internal error"), (503, "Unavailable"))
                },
            },
            "security": [{"sigv4": []}],
        }
        if op in EXTENSIONS:
            spec["x-airdock-extension"] = True  # not part of Amazon MWAA's API
        if op.input is not None:
            body = _body_schema(op.input, op.path_params)
            components.update(body["defs"])
            spec["requestBody"] = {"required": True, "content": {"application/json": {"schema": body["schema"]}}}
        paths.setdefault(op.path, {})[op.method.lower()] = spec
    return {
        # 3.1: the schemas are pydantic's JSON Schema 2020-12 (anyOf null, propertyNames,
        # patternProperties), which OpenAPI 3.0's schema dialect rejects.
        "openapi": "3.1.0",
        "info": {"title": "Airdock (Amazon MWAA API, 2020-07-01)", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"sigv4": {"type": "apiKey", "name": "Authorization", "in": "header",
                                          "x-amazon-apigateway-authtype": "awsSigv4"}},
        },
    }
