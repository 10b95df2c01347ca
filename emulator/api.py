"""Calendar v3 request dispatch: routing, bearer auth, scope checks, quotas, error envelopes
and partial responses (the ``fields`` parameter, :mod:`emulator.fields`).

Calendar methods are plain coroutines ``(Call) -> ApiResponse`` registered on a
:class:`Routes` table. :func:`dispatch` runs one request through the same pipeline whether it
came over HTTP or as one part of a batch request::

    routes = Routes()

    @routes.get("/calendars/{calendarId}/events", "events.list", READ_EVENTS)
    async def events_list(call: Call) -> ApiResponse: ...
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

from multidict import CIMultiDict, MultiDict, MultiDictProxy, MultiMapping

from emulator import fields
from emulator.errors import ApiError, invalid_parameter, not_found, parse_error
from emulator.fields import Selection
from emulator.quotas import Quotas
from emulator.state import AccessToken, Account, Calendar, Store

SCOPE_PREFIX = "https://www.googleapis.com/auth/"


def _scopes(*names: str) -> frozenset[str]:
    return frozenset(SCOPE_PREFIX + n for n in names)


# Which scopes admit which methods (google-api-facts §1.7, from the discovery document).
READ_EVENTS = _scopes(
    "calendar",
    "calendar.readonly",
    "calendar.events",
    "calendar.events.readonly",
    "calendar.events.owned",
    "calendar.events.owned.readonly",
    "calendar.events.public.readonly",
    "calendar.events.freebusy",
    "calendar.app.created",
)
WRITE_EVENTS = _scopes(
    "calendar", "calendar.events", "calendar.events.owned", "calendar.app.created"
)
READ_CALENDARS = _scopes(
    "calendar",
    "calendar.readonly",
    "calendar.calendars",
    "calendar.calendars.readonly",
)
READ_CALENDAR_LIST = _scopes(
    "calendar",
    "calendar.readonly",
    "calendar.calendarlist",
    "calendar.calendarlist.readonly",
)
FREEBUSY = _scopes(
    "calendar",
    "calendar.readonly",
    "calendar.events.freebusy",
    "calendar.freebusy",
)
ANY_CALENDAR = frozenset(s for s in READ_EVENTS | READ_CALENDARS | READ_CALENDAR_LIST | FREEBUSY)


@dataclass(frozen=True, slots=True)
class ApiRequest:
    """One Calendar request, independent of how it arrived (HTTP or a batch part)."""

    method: str
    path: str  # below /calendar/v3, e.g. "/calendars/primary/events"
    query: MultiMapping[str]
    headers: Mapping[str, str]  # case-insensitive
    body: bytes = b""

    @classmethod
    def build(
        cls,
        method: str,
        path: str,
        query: str = "",
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
    ) -> ApiRequest:
        return cls(
            method=method.upper(),
            path=path,
            query=MultiDictProxy(MultiDict(parse_qsl(query, keep_blank_values=True))),
            headers=CIMultiDict(headers or {}),
            body=body,
        )


@dataclass(slots=True)
class ApiResponse:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json; charset=UTF-8"
    compact: bool = False  # the body is JSON without whitespace already (prettyPrint=false)


def json_response(
    obj: Any, status: int = 200, headers: dict[str, str] | None = None
) -> ApiResponse:
    return ApiResponse(status=status, body=json.dumps(obj).encode(), headers=headers or {})


def error_response(error: ApiError) -> ApiResponse:
    return ApiResponse(status=error.status, body=error.body(), headers=dict(error.headers))


@dataclass(frozen=True, slots=True)
class Call:
    """What a Calendar method handler gets: the request and the authenticated caller."""

    request: ApiRequest
    params: dict[str, str]
    store: Store
    account: Account
    token: AccessToken
    name: str

    def json_body(self) -> dict[str, Any]:
        try:
            value = json.loads(self.request.body or b"{}")
        except ValueError as err:
            raise parse_error() from err
        if not isinstance(value, dict):
            raise parse_error()
        return value

    def calendar(self, calendar_id: str | None = None) -> Calendar:
        """The caller's calendar named by the path (or ``calendar_id``); 404 if none."""
        found = self.store.calendar(self.account, calendar_id or self.params["calendarId"])
        if found is None:
            raise not_found()
        return found


Handler = Callable[[Call], Awaitable[ApiResponse]]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    name: str
    scopes: frozenset[str]
    write: bool
    handler: Handler


class Routes:
    """A table of Calendar methods, filled by decorators in the method modules."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(
        self, method: str, template: str, name: str, scopes: frozenset[str], *, write: bool = False
    ) -> Callable[[Handler], Handler]:
        # "{calendarId}" matches one path segment.
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
        pattern = re.compile(f"^{regex}$")

        def register(handler: Handler) -> Handler:
            self.routes.append(Route(method, pattern, name, scopes, write, handler))
            return handler

        return register

    def get(self, template: str, name: str, scopes: frozenset[str]) -> Callable[[Handler], Handler]:
        return self.add("GET", template, name, scopes)

    def post(
        self, template: str, name: str, scopes: frozenset[str], *, write: bool = False
    ) -> Callable[[Handler], Handler]:
        return self.add("POST", template, name, scopes, write=write)

    def extend(self, other: Routes) -> None:
        self.routes.extend(other.routes)

    def resolve(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        for route in self.routes:
            if route.method != method:
                continue
            match = route.pattern.match(path)
            if match:
                return route, {k: unquote(v) for k, v in match.groupdict().items()}
        raise not_found()


def effective_request(request: ApiRequest) -> ApiRequest:
    """Undo googleapiclient's long-URI rewrite: ``POST`` + ``x-http-method-override: GET``."""
    override = request.headers.get("x-http-method-override", "").upper()
    if request.method != "POST" or not override:
        return request
    query = MultiDict(request.query)
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        query.extend(parse_qsl(request.body.decode(), keep_blank_values=True))
    return ApiRequest(override, request.path, MultiDictProxy(query), request.headers, b"")


def _unauthorized() -> ApiError:
    return ApiError(
        401,
        "authError",
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
        "cookie or other valid authentication credential.",
        location="Authorization",
        location_type="header",
        headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'},
    )


def authenticate(store: Store, headers: Mapping[str, str]) -> AccessToken:
    """The access token named by the ``Authorization: Bearer`` header, or a 401."""
    scheme, _, credential = headers.get("authorization", "").partition(" ")
    token = store.valid_access_token(credential.strip()) if scheme.lower() == "bearer" else None
    if token is None:
        raise _unauthorized()
    return token


def resolve_name(routes: Routes, request: ApiRequest) -> str | None:
    """The method name (``events.list``) a request is for, if any; used to target faults."""
    try:
        route, _ = routes.resolve(effective_request(request).method, request.path)
    except ApiError:
        return None
    return route.name


async def dispatch(
    store: Store, quotas: Quotas, routes: Routes, request: ApiRequest
) -> ApiResponse:
    """Run one Calendar request: resolve, authenticate, check scopes and quotas, handle."""
    request = effective_request(request)
    try:
        route, params = routes.resolve(request.method, request.path)
        store.requests[route.name] += 1
        token = authenticate(store, request.headers)
        if not (token.scopes & route.scopes):
            raise ApiError(
                403,
                "insufficientPermissions",
                "Request had insufficient authentication scopes.",
            )
        account = store.account(token.email)
        quotas.check(account.email, token.client_id)
        if account.quota_exceeded and (route.write or not store.config.quota_exceeded_writes_only):
            raise ApiError(
                403, "quotaExceeded", "Calendar usage limits exceeded.", domain="usageLimits"
            )
        selection = _selection(request, route.name, store.config.fields_unknown_error)
        call = Call(request, params, store, account, token, route.name)
        response = await route.handler(call)
    except ApiError as err:
        return error_response(err)
    compact = wants_compact(request.query)
    if selection is None and (response.compact or not compact):
        return response
    return partial_response(response, selection, compact=compact)


def wants_compact(query: MultiMapping[str]) -> bool:
    """Whether a request asks for JSON without whitespace (``prettyPrint=false``). Google
    "returns response with indentations and line breaks" unless told not to (calendar.v3.json;
    the emulator's own default is json.dumps' spaces, without line breaks)."""
    return (query.get("prettyPrint") or "").lower() == "false"


def _selection(request: ApiRequest, method: str, strict: bool) -> Selection | None:
    """The ``fields`` selection of a request (None: the whole response); checked before the
    handler runs, so a bad expression fails a write without making it."""
    # Repeated parameters select their union; an empty one selects everything [I].
    expression = ",".join(value for value in request.query.getall("fields", ()) if value)
    if not expression:
        return None
    try:
        return fields.check(expression, method, strict=strict)
    except fields.FieldsError as err:
        raise invalid_parameter("fields", err.message) from err


def partial_response(
    response: ApiResponse, selection: Selection | None, *, compact: bool = False
) -> ApiResponse:
    """A successful JSON response cut down to ``selection`` (None: all of it) and, with
    ``compact`` (``prettyPrint=false``), written without whitespace; anything else as it is.

    Only here is a page body decoded again: without ``fields`` or ``prettyPrint=false``
    events.list's joined item bytes pass through untouched.
    """
    is_json = response.content_type.startswith("application/json")
    if not (200 <= response.status < 300 and response.body and is_json):
        return response
    value = json.loads(response.body)
    if selection is not None:
        value = fields.project(value, selection)
    response.body = json.dumps(value, separators=COMPACT if compact else None).encode()
    response.compact = compact
    return response


COMPACT = (",", ":")  # json.dumps' separators for prettyPrint=false
