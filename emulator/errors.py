"""Google's error envelopes: the Calendar API's JSON error and the OAuth endpoints' error.

Calendar errors use Google's "legacy" envelope::

    {"error": {"errors": [{"domain": "global", "reason": "notFound", "message": "Not Found"}],
               "code": 404, "message": "Not Found", "status": "NOT_FOUND"}}
"""

from __future__ import annotations

import json
from typing import Any

# Canonical gRPC status names Google adds to current responses (google-api-facts §4.4).
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    410: "NOT_FOUND",
    412: "FAILED_PRECONDITION",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


class ApiError(Exception):
    """A Calendar API error, rendered as Google's JSON error envelope."""

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        *,
        domain: str = "global",
        location: str | None = None,
        location_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.domain = domain
        self.location = location
        self.location_type = location_type
        self.headers = headers or {}

    def envelope(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "domain": self.domain,
            "reason": self.reason,
            "message": self.message,
        }
        if self.location_type:
            item["locationType"] = self.location_type
        if self.location:
            item["location"] = self.location
        error: dict[str, Any] = {"errors": [item], "code": self.status, "message": self.message}
        if self.status in _STATUS_NAMES:
            error["status"] = _STATUS_NAMES[self.status]
        return {"error": error}

    def body(self) -> bytes:
        return json.dumps(self.envelope()).encode()


# Constructors for the errors every Calendar method can raise.


def bad_request(
    message: str, *, reason: str = "badRequest", location: str | None = None
) -> ApiError:
    return ApiError(
        400, reason, message, location=location, location_type="parameter" if location else None
    )


def invalid_parameter(location: str, message: str | None = None) -> ApiError:
    return ApiError(
        400,
        "invalidParameter",
        message or f"Invalid value for: {location}",
        location=location,
        location_type="parameter",
    )


def required(location: str, message: str) -> ApiError:
    return ApiError(400, "required", message, location=location, location_type="parameter")


def time_range_empty() -> ApiError:
    return ApiError(
        400,
        "timeRangeEmpty",
        "The specified time range is empty.",
        domain="calendar",
        location="timeMax",
        location_type="parameter",
    )


def not_found() -> ApiError:
    return ApiError(404, "notFound", "Not Found")


def gone_deleted() -> ApiError:
    return ApiError(410, "deleted", "Resource has been deleted")


def parse_error() -> ApiError:
    return ApiError(400, "parseError", "Parse Error")


class OAuthError(Exception):
    """An OAuth token/revoke endpoint error: ``{"error": ..., "error_description": ...}``."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(f"{status} {error}: {description}")
        self.status = status
        self.error = error
        self.description = description

    def body(self) -> bytes:
        return json.dumps({"error": self.error, "error_description": self.description}).encode()
