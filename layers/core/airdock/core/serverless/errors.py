"""MWAA Serverless errors, each in the service model's shape.

The awsJson1_0 protocol carries the error's name in `__type` and the shape's members beside the
message; the HTTP status is the transport's choice (the model names none), picked here once.
"""
from __future__ import annotations

from typing import Any, Literal

from airdock.core.errors import AirdockError

SERVICE_CODE = "airflow-serverless"

ValidationReason = Literal["unknownOperation", "cannotParse", "fieldValidationFailed", "other"]


class ServerlessValidationError(AirdockError):
    code = "ValidationException"
    status = 400

    def __init__(self, message: str, reason: ValidationReason = "fieldValidationFailed",
                 fields: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message, Reason=reason,
                         **({"FieldList": [{"Name": n, "Message": m} for n, m in fields]} if fields else {}))


def field_error(field: str, message: str) -> ServerlessValidationError:
    """A ValidationException about one member, its name in both the message and FieldList."""
    return ServerlessValidationError(f"Invalid {field}: {message}", "fieldValidationFailed", [(field, message)])


class _ResourceError(AirdockError):
    def __init__(self, message: str, resource_id: str, resource_type: str, **extra: Any) -> None:
        super().__init__(message, ResourceId=resource_id, ResourceType=resource_type, **extra)


class ConflictError(_ResourceError):
    code = "ConflictException"
    status = 409


class NotFoundError(_ResourceError):
    code = "ResourceNotFoundException"
    status = 404


class QuotaExceededError(_ResourceError):
    code = "ServiceQuotaExceededException"
    status = 402

    def __init__(self, message: str, resource_id: str, resource_type: str, quota_code: str) -> None:
        super().__init__(message, resource_id, resource_type, ServiceCode=SERVICE_CODE, QuotaCode=quota_code)


class OperationTimeoutError(AirdockError):
    code = "OperationTimeoutException"
    status = 504


class EngineUnavailable(Exception):
    """The engine cannot take the request now (starting, or the DAG is not parsed yet). Not an
    API error: whoever asked retries later (a run stays STARTING meanwhile)."""


class DefinitionRejected(Exception):
    """The engine could not load the version's DAG (dag-factory's error in the message): its runs
    fail with it, as AWS reports a definition that does not load."""
