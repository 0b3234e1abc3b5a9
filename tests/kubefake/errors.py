"""API errors as the real API server reports them: `Status` objects (k8s.io/apimachinery
pkg/api/errors) with the same code, reason, message and details."""

from __future__ import annotations

from typing import Any

from .resources import ResourceType


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details is not None:
            status["details"] = self.details
        status["code"] = self.code
        return status


def resource_details(resource: ResourceType, name: str, **extra: Any) -> dict[str, Any]:
    """StatusDetails naming a resource: `kind` holds the resource, as the real server does."""
    details: dict[str, Any] = {"name": name} if name else {}
    if resource.group:
        details["group"] = resource.group
    return {**details, "kind": resource.plural, **extra}


def not_found(resource: ResourceType, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{resource.qualified} "{name}" not found',
                    resource_details(resource, name))


def already_exists(resource: ResourceType, name: str) -> ApiError:
    return ApiError(409, "AlreadyExists", f'{resource.qualified} "{name}" already exists',
                    resource_details(resource, name))


def conflict(resource: ResourceType, name: str) -> ApiError:
    return ApiError(
        409, "Conflict",
        f'Operation cannot be fulfilled on {resource.qualified} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again",
        resource_details(resource, name))


def forbidden(resource: ResourceType, name: str, reason: str) -> ApiError:
    subject = f'{resource.qualified} "{name}"' if name else resource.qualified
    return ApiError(403, "Forbidden", f"{subject} is forbidden: {reason}",
                    resource_details(resource, name))


def invalid(resource: ResourceType, name: str, field: str, cause: str, detail: str) -> ApiError:
    """422 for one invalid field; `cause` is a CauseType such as FieldValueRequired."""
    message = f"{field}: {detail}"
    details: dict[str, Any] = {"name": name} if name else {}
    if resource.group:
        details["group"] = resource.group
    details["kind"] = resource.kind
    details["causes"] = [{"reason": cause, "message": detail, "field": field}]
    return ApiError(422, "Invalid", f'{resource.qualified_kind} "{name}" is invalid: {message}',
                    details)


def unprocessable() -> ApiError:
    """422 as for a JSON patch that does not apply (NewGenericServerResponse, no resource)."""
    return ApiError(422, "Invalid", "the server rejected our request due to an error in our "
                    "request", {})


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def method_not_supported(resource: ResourceType, action: str) -> ApiError:
    return ApiError(405, "MethodNotAllowed",
                    f'{action} is not supported on resources of kind "{resource.qualified}"',
                    resource_details(resource, ""))


def unsupported_media_type(accepted: list[str]) -> ApiError:
    return ApiError(415, "UnsupportedMediaType",
                    "the body of the request was in an unknown format - accepted media types "
                    f"include: {', '.join(accepted)}")


def internal_error(cause: str) -> ApiError:
    return ApiError(500, "InternalError", f"Internal error occurred: {cause}",
                    {"causes": [{"message": cause}]})
