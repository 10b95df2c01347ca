"""Google's failures map to the error the caller acts on, each with a stable code."""

from __future__ import annotations

import json

import pytest

from gcal import errors


def envelope(status: int, reason: str, message: str = "msg") -> bytes:
    return json.dumps(
        {
            "error": {
                "errors": [{"reason": reason, "message": message}],
                "code": status,
                "message": message,
            }
        }
    ).encode()


@pytest.mark.parametrize(
    ("status", "reason", "message", "code", "retryable"),
    [
        (400, "timeRangeEmpty", "The specified time range is empty.", "invalid_request", False),
        (400, "invalid", "Invalid sync token value.", "full_sync_required", False),
        (401, "authError", "Invalid Credentials", "auth_required", False),
        (403, "insufficientPermissions", "Insufficient Permission", "scope_missing", False),
        (403, "rateLimitExceeded", "Rate Limit Exceeded", "rate_limited", True),
        (403, "userRateLimitExceeded", "User Rate Limit Exceeded", "rate_limited", True),
        (403, "quotaExceeded", "Calendar usage limits exceeded.", "quota_exhausted", True),
        (403, "forbiddenForNonOrganizer", "Shared properties...", "invalid_request", False),
        (404, "notFound", "Not Found", "not_found", False),
        (409, "duplicate", "The requested identifier already exists.", "conflict", False),
        (410, "fullSyncRequired", "Sync token is no longer valid.", "full_sync_required", False),
        (410, "deleted", "Resource has been deleted", "gone", False),
        (412, "conditionNotMet", "Precondition Failed", "precondition_failed", False),
        (429, "rateLimitExceeded", "Rate Limit Exceeded", "rate_limited", True),
        (500, "backendError", "Backend Error", "upstream_unavailable", True),
        (503, "backendError", "Backend Error", "upstream_unavailable", True),
    ],
)
def test_google_failures_map_to_codes(
    status: int, reason: str, message: str, code: str, retryable: bool
) -> None:
    err = errors.from_google_response(status, envelope(status, reason, message))
    assert (err.code, err.retryable) == (code, retryable)
    assert err.as_dict()["code"] == code


def test_retry_after_is_carried_for_rate_limits() -> None:
    err = errors.from_google_response(429, b"", retry_after=7.0)
    assert isinstance(err, errors.RateLimited)
    assert err.as_dict() == {
        "code": "rate_limited",
        "message": "Google answered 429",
        "retryable": True,
        "retry_after": 7.0,
    }


def test_an_unparseable_error_body_still_maps_by_status() -> None:
    assert isinstance(errors.from_google_response(503, b"<html>"), errors.UpstreamUnavailable)
    assert isinstance(errors.from_google_response(404, b"{"), errors.NotFound)


def test_callers_can_branch_on_the_family() -> None:
    revoked = errors.AuthRevoked("gone")
    assert isinstance(revoked, errors.AuthRequired)
    assert isinstance(errors.QuotaExhausted("x"), errors.RateLimited)
