"""Domain errors, each carrying the MWAA error code and HTTP status it maps to.

The mapping lives here once; transports (API Gateway, the local server) only render it.
"""
from __future__ import annotations

from typing import Any


class AirdockError(Exception):
    code: str = "InternalServerException"
    status: int = 500

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        # Extra members of the error shape (e.g. RestApiStatusCode) rendered beside the message.
        self.fields = fields

    def body(self) -> dict[str, Any]:
        return {"message": self.message, "Message": self.message, **self.fields}


class ValidationError(AirdockError):
    code = "ValidationException"
    status = 400


class ResourceNotFound(AirdockError):
    code = "ResourceNotFoundException"
    status = 404


class AccessDenied(AirdockError):
    code = "AccessDeniedException"
    status = 403


class ServiceUnavailable(AirdockError):
    code = "ServiceUnavailableException"
    status = 503


class InternalError(AirdockError):
    code = "InternalServerException"
    status = 500


class RestApiClientError(AirdockError):
    code = "RestApiClientException"
    status = 400


class RestApiServerError(AirdockError):
    code = "RestApiServerException"
    status = 400


class ConcurrentModification(Exception):
    """A conditional write lost the race: another writer changed the record first.

    Not an MWAA error by itself; the service turns it into the ValidationException MWAA gives
    for "another change is in progress".
    """


class AlreadyExists(Exception):
    """A create found the key taken (raised by repositories, translated by the service)."""


def environment_not_found(name: str) -> ResourceNotFound:
    return ResourceNotFound(f"Environment named {name} does not exist.")


class Interrupted(Exception):
    """The compute adapter is shutting down and refused the step. Nothing failed: whoever asked
    (a workflow, a lifecycle operation) is resumed by the next start and runs the step again."""


class ProvisioningError(Exception):
    """A provisioning step failed for a reason the user can act on.

    `code` becomes LastUpdate.Error.ErrorCode, `message` its ErrorMessage (say what to fix).
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
