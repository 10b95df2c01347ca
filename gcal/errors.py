"""The error taxonomy: what went wrong, named for what the caller does next.

Every failure the service reports (job results, notifications, auth_web pages) is one of
these, with a stable machine-readable ``code`` and a ``retryable`` flag. Google's HTTP status
and ``reason`` are mapped to them in exactly one place, :func:`from_google_response`::

    GcalError
     +-- InvalidRequest          invalid_request       fix the request
     +-- AuthRequired            auth_required         link the account (again)
     |    +-- AuthRevoked        auth_revoked          the user revoked access: re-consent
     |    +-- ScopeMissing       scope_missing         re-consent with the needed scope
     +-- NotFound                not_found
     |    +-- Gone               gone                  deleted at Google
     +-- Conflict                conflict              e.g. the event id already exists
     +-- PreconditionFailed      precondition_failed   etag mismatch: re-read, then retry
     +-- FullSyncRequired        full_sync_required    drop the sync token, sync from scratch
     +-- RateLimited             rate_limited          retry after ``retry_after`` seconds
     |    +-- Throttled          rate_limited          (our own limiter: nothing was sent)
     |    +-- QuotaExhausted     quota_exhausted       per-user Calendar usage limits
     +-- UpstreamUnavailable     upstream_unavailable  Google failed or was unreachable: retry
     +-- InternalError           internal              a bug or a misconfiguration

Every subclass registers its ``code`` in :data:`ERROR_CODES` as it is defined, so job
results, notifications and the JSON Schemas derive their list of codes from this tree and a
new class can never produce a code they refuse.

Messages never contain tokens, codes or secrets.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, Field

# code -> the class that introduced it (filled by ``GcalError.__init_subclass__``).
ERROR_CODES: dict[str, type[GcalError]] = {}


class GcalError(Exception):
    """Base of every error this service reports."""

    code: ClassVar[str] = "internal"
    retryable: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        owner = ERROR_CODES.setdefault(cls.code, cls)
        if owner is not cls and "code" in vars(cls):
            raise TypeError(f"{cls.__name__} reuses the code {cls.code!r} of {owner.__name__}")

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after

    def as_dict(self) -> dict[str, Any]:
        """The error as job results and notifications carry it."""
        out: dict[str, Any] = {
            "code": self.code,
            "message": self.message,
            "retryable": self.retryable,
        }
        if self.retry_after is not None:
            out["retry_after"] = self.retry_after
        return out


class InvalidRequest(GcalError):
    code = "invalid_request"


class AuthRequired(GcalError):
    code = "auth_required"


class AuthRevoked(AuthRequired):
    code = "auth_revoked"


class ScopeMissing(AuthRequired):
    """The user's grant lacks a scope. ``missing_scopes`` names the scopes to ask for when
    they are known (what a job needs, :func:`gcal.scopes.lacking`; what a consent lacked)."""

    code = "scope_missing"

    def __init__(self, message: str, *, missing_scopes: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.missing_scopes = missing_scopes

    def as_dict(self) -> dict[str, Any]:
        out = super().as_dict()
        if self.missing_scopes:
            out["missing_scopes"] = list(self.missing_scopes)
        return out


class NotFound(GcalError):
    code = "not_found"


class Gone(NotFound):
    code = "gone"


class Conflict(GcalError):
    code = "conflict"


class PreconditionFailed(GcalError):
    code = "precondition_failed"


class FullSyncRequired(GcalError):
    code = "full_sync_required"


class RateLimited(GcalError):
    code = "rate_limited"
    retryable = True


class Throttled(RateLimited):
    """Our own rate limiter held the request back: Google was not asked."""


class QuotaExhausted(RateLimited):
    code = "quota_exhausted"


class UpstreamUnavailable(GcalError):
    code = "upstream_unavailable"
    retryable = True


class InternalError(GcalError):
    code = "internal"


_RATE_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
_SCOPE_REASONS = frozenset({"insufficientPermissions", "ACCESS_TOKEN_SCOPE_INSUFFICIENT"})


def _reason(body: bytes) -> tuple[str, str]:
    """Google's first error ``reason`` and the error ``message`` from an error body."""
    try:
        error = json.loads(body)["error"]
        items = error.get("errors") or [{}]
        return str(items[0].get("reason", "")), str(error.get("message", ""))
    except (ValueError, KeyError, TypeError, AttributeError, IndexError):
        return "", ""


def from_google_response(
    status: int, body: bytes, *, retry_after: float | None = None
) -> GcalError:
    """The domain error for a failed Calendar API response (status >= 400)."""
    reason, message = _reason(body)
    detail = f"Google answered {status}" + (f" {reason}" if reason else "")
    if message:
        detail += f": {message}"
    if status == 400 and reason == "invalid" and message == "Invalid sync token value.":
        return FullSyncRequired(detail)
    if status == 410 and reason in ("fullSyncRequired", "updatedMinTooLongAgo"):
        return FullSyncRequired(detail)
    if status == 401:
        return AuthRequired(detail)
    if status == 403 and reason == "quotaExceeded":
        return QuotaExhausted(detail, retry_after=retry_after)
    if (status == 403 and reason in _RATE_REASONS) or status == 429:
        return RateLimited(detail, retry_after=retry_after)
    if status == 403 and reason in _SCOPE_REASONS:
        return ScopeMissing(detail)
    if status == 404:
        return NotFound(detail)
    if status == 409:
        return Conflict(detail)
    if status == 410:
        return Gone(detail)
    if status == 412:
        return PreconditionFailed(detail)
    if status >= 500 or status == 408:
        return UpstreamUnavailable(detail, retry_after=retry_after)
    if 400 <= status < 500:
        return InvalidRequest(detail)
    return InternalError(f"unexpected Google status {status}")


def _codes_enum(schema: dict[str, Any]) -> None:
    # Filled in when a schema is generated, from the classes defined by then.
    schema["enum"] = sorted(ERROR_CODES)


def _known_code(code: str) -> str:
    if code not in ERROR_CODES:
        raise ValueError(f"not an error code of gcal.errors: {code!r}")
    return code


# An error code as results and notifications carry it: one of ``ERROR_CODES``.
ErrorCode = Annotated[str, AfterValidator(_known_code), Field(json_schema_extra=_codes_enum)]
