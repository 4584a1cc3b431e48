"""API Gateway routes exactly what the API handlers serve, and only with IAM auth.

The MWAA handler (functions/api/app.py) decides which operations exist; MWAA Serverless's
(functions/serverless_api/app.py) takes awsJson1_0 at `POST /`. API Gateway in front of them
forwards only the paths and methods the template declares. A route the handler has and the
template lacks is unreachable on AWS (API Gateway answers 403 MissingAuthenticationToken); one the
template has and the handler lacks answers 404. Read from the transformed template: the OpenAPI
body SAM generates is what API Gateway is given.
"""
from __future__ import annotations

import re
from typing import Any

from airdock.local.functions import load_function
from support.sam import transformed_template

FUNCTION = "ApiFunction"
SERVERLESS_FUNCTION = "ServerlessApiFunction"
# awsJson1_0: one path, the operation in X-Amz-Target.
SERVERLESS_ROUTES = {("POST", "/")}


def _handler_routes() -> set[tuple[str, str]]:
    app = load_function("api").app
    return {(route.method.upper(), re.sub(r"<(\w+)>", r"{\1}", route.path))
            for route in app._static_routes + app._dynamic_routes}


def _gateway_operations() -> dict[tuple[str, str], dict[str, Any]]:
    resources = transformed_template()["Resources"]
    apis = [r for r in resources.values() if r["Type"] == "AWS::ApiGateway::RestApi"]
    assert len(apis) == 1
    operations: dict[tuple[str, str], dict[str, Any]] = {}
    for path, methods in apis[0]["Properties"]["Body"]["paths"].items():
        for method, operation in methods.items():
            # {ResourceArn+} is API Gateway's greedy form of the handler's one-segment {ResourceArn}
            # (the ARN's "/" may arrive decoded; the handler re-encodes it before routing).
            operations[(method.upper(), path.replace("+}", "}"))] = operation
    return operations


def _routes_to(function: str) -> set[tuple[str, str]]:
    return {route for route, operation in _gateway_operations().items()
            if "${" + function + ".Arn}" in str(operation["x-amazon-apigateway-integration"]["uri"])}


def test_the_gateway_routes_equal_the_handler_routes() -> None:
    handler, gateway = _handler_routes(), _routes_to(FUNCTION)
    assert _routes_to(SERVERLESS_FUNCTION) == SERVERLESS_ROUTES
    assert set(_gateway_operations()) == gateway | SERVERLESS_ROUTES
    assert not handler - gateway, f"served by the handler but not routed by API Gateway: {sorted(handler - gateway)}"
    assert not gateway - handler, f"routed by API Gateway but not served by the handler: {sorted(gateway - handler)}"


def test_every_gateway_route_is_iam_authorized_and_goes_to_an_api_function() -> None:
    for (method, path), operation in _gateway_operations().items():
        assert operation.get("security") == [{"AWS_IAM": []}], f"{method} {path} is not IAM-authorized"
        integration = operation["x-amazon-apigateway-integration"]
        assert integration["type"] == "aws_proxy"
        function = SERVERLESS_FUNCTION if (method, path) in SERVERLESS_ROUTES else FUNCTION
        assert "${" + function + ".Arn}" in str(integration["uri"]), f"{method} {path} does not reach {function}"
