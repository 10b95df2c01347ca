"""Partial responses: the ``fields`` standard parameter (google-api-facts §4.1).

Google's syntax (developers.google.com/workspace/calendar/api/guides/performance)::

    fields=nextPageToken,items(id,start/dateTime),calendars/*/busy

* ``a,b`` selects several fields; ``a/b`` selects ``b`` inside ``a``; ``a(b,c)`` selects
  ``b`` and ``c`` inside ``a``; when ``a`` is an array the selection applies to each element.
* ``*`` selects every field at its level (``items(*)``, ``calendars/*/busy``).
* Map keys (freebusy's ``calendars``) are selected like field names.
* No whitespace, no empty selections: anything else is a :class:`FieldsError`.

A parsed expression is a :data:`Selection`, a tree of dicts where an empty dict means "the
whole value"; selecting a field whole beats any sub-selection of it (``a,a/b`` is ``a``)::

    selection = parse("items(id,start/dateTime),nextPageToken")
    # {"items": {"id": {}, "start": {"dateTime": {}}}, "nextPageToken": {}}
    project(page, selection)

:func:`unknown_name` checks a selection against the response schema of a Calendar method in
the discovery document shipped with google-api-python-client (for Google's strict reading,
``EmulatorConfig.fields_unknown_error``).
"""

from __future__ import annotations

import functools
import importlib.util
import json
from pathlib import Path
from typing import Any, Final

# A selection tree: field name (or "*") -> what to select inside it; {} selects it whole.
Selection = dict[str, "Selection"]

WILDCARD: Final = "*"
_SPECIAL: Final = frozenset(",/()*")
_MISSING: Final = object()


class FieldsError(ValueError):
    """A ``fields`` expression that does not parse, or names a field the schema lacks."""

    def __init__(self, expression: str, detail: str, *, selection: str | None = None) -> None:
        super().__init__(f"{detail} in fields={expression!r}")
        self.expression = expression
        self.detail = detail
        # Google's message names the bad selection: the unknown name, or the whole expression.
        self.message = f"Invalid field selection {selection or expression}"


# --------------------------------------------------------------------------------------------
# Parsing


def merge(a: Selection, b: Selection) -> Selection:
    """The union of two selections (a whole value absorbs any sub-selection of it)."""
    if not a or not b:
        return {}
    merged = dict(a)
    for name, sub in b.items():
        merged[name] = merge(merged[name], sub) if name in merged else sub
    return merged


class _Parser:
    """Recursive descent over ``list := item (',' item)*``, ``item := path ['(' list ')']``,
    ``path := name ('/' name)*``, ``name := '*' | <characters other than ,/()* and spaces>``."""

    def __init__(self, expression: str) -> None:
        self.text = expression
        self.pos = 0

    def fail(self, detail: str) -> FieldsError:
        return FieldsError(self.text, f"{detail} at position {self.pos}")

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def name(self) -> str:
        if self.peek() == WILDCARD:
            self.pos += 1
            return WILDCARD
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in _SPECIAL:
            if self.text[self.pos].isspace():
                raise self.fail("whitespace is not allowed")
            self.pos += 1
        if self.pos == start:
            found = repr(self.peek()) if self.peek() else "end of input"
            raise self.fail(f"expected a field name, found {found}")
        return self.text[start : self.pos]

    def item(self) -> Selection:
        path = [self.name()]
        while self.peek() == "/":
            self.pos += 1
            path.append(self.name())
        inner: Selection = {}
        if self.peek() == "(":
            self.pos += 1
            inner = self.items()
            if self.peek() != ")":
                raise self.fail("expected ')'")
            self.pos += 1
        for name in reversed(path):
            inner = {name: inner}
        return inner

    def items(self) -> Selection:
        selection = self.item()
        while self.peek() == ",":
            self.pos += 1
            selection = merge(selection, self.item())
        return selection

    def parse(self) -> Selection:
        selection = self.items()
        if self.pos < len(self.text):
            raise self.fail(f"unexpected {self.peek()!r}")
        return selection


def parse(expression: str) -> Selection:
    """The selection tree of a ``fields`` expression; :class:`FieldsError` if malformed."""
    return _Parser(expression).parse()


# --------------------------------------------------------------------------------------------
# Projection


def _child(selection: Selection, name: str) -> Selection | None:
    """What ``selection`` selects inside field ``name`` (None: the field is not selected)."""
    named, wild = selection.get(name), selection.get(WILDCARD)
    if named is None or wild is None:
        return named if wild is None else wild
    return merge(named, wild)


def _project(value: Any, selection: Selection) -> Any:
    if not selection:
        return value
    if isinstance(value, list):
        # A selection applies to every element; elements it cannot apply to are dropped.
        kept = [p for p in (_project(v, selection) for v in value) if p is not _MISSING]
        return kept if kept or not value else _MISSING
    if not isinstance(value, dict):
        return _MISSING  # a sub-selection of a string or number: nothing to select
    out: dict[str, Any] = {}
    for name, item in value.items():  # the response's own key order
        sub = _child(selection, name)
        if sub is not None:
            projected = _project(item, sub)
            if projected is not _MISSING:
                out[name] = projected
    return out


def project(value: Any, selection: Selection) -> Any:
    """``value`` (a JSON object, or a list of them) with only the selected fields.

    Names the value lacks are simply absent; an object whose selected fields are all absent
    stays as ``{}`` (its presence is data).
    """
    projected = _project(value, selection)
    return {} if projected is _MISSING else projected


# --------------------------------------------------------------------------------------------
# Schema check (strict mode)


@functools.cache
def _discovery() -> dict[str, Any]:
    """Calendar v3's discovery document, from google-api-python-client's bundled cache.

    Located without importing googleapiclient (``find_spec`` only finds the package).
    """
    spec = importlib.util.find_spec("googleapiclient")
    locations = spec.submodule_search_locations if spec else None
    if not locations:
        raise RuntimeError("fields_unknown_error needs google-api-python-client installed")
    path = Path(next(iter(locations))) / "discovery_cache" / "documents" / "calendar.v3.json"
    document: dict[str, Any] = json.loads(path.read_text())
    return document


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with ``$ref`` followed and arrays unwrapped to their element schema."""
    while True:
        if "$ref" in schema:
            schema = _discovery()["schemas"][schema["$ref"]]
        elif schema.get("type") == "array" and "items" in schema:
            schema = schema["items"]
        else:
            return schema


def _unknown_in(selection: Selection, schema: dict[str, Any]) -> str | None:
    schema = _resolve(schema)
    if schema.get("type") == "any":
        return None
    properties: dict[str, Any] = schema.get("properties", {})
    for name, sub in selection.items():
        if name == WILDCARD:
            continue  # what lies below a wildcard is not checked
        if name in properties:
            child = properties[name]
        elif "additionalProperties" in schema:
            child = schema["additionalProperties"]  # a map: every key is a valid name
        else:
            return name
        found = _unknown_in(sub, child) if sub else None
        if found is not None:
            return found
    return None


def unknown_name(selection: Selection, method: str) -> str | None:
    """The first selected name that ``method``'s (``events.list``) response schema lacks.

    None when every name is known, or when the discovery document does not describe the
    method's response (then there is nothing to check against).
    """
    resource, _, name = method.rpartition(".")
    found = _discovery()["resources"].get(resource, {}).get("methods", {}).get(name, {})
    response = found.get("response")
    return None if response is None else _unknown_in(selection, response)


def check(expression: str, method: str, *, strict: bool) -> Selection:
    """Parse ``expression`` for a call of ``method``; with ``strict``, unknown names fail too."""
    selection = parse(expression)
    if strict:
        unknown = unknown_name(selection, method)
        if unknown is not None:
            raise FieldsError(expression, f"unknown field {unknown!r}", selection=unknown)
    return selection
