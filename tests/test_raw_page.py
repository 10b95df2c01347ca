"""A page of events passed on as Google's bytes (:class:`gcal.calendar_api.RawEventsPage`):
whatever the page holds, the events and tokens read from it are the ones a full JSON parse
reads, and a page that is not one is refused."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gcal import calendar_api
from gcal.calendar_api import RawEventsPage
from gcal.errors import UpstreamUnavailable

# Text meant to confuse a cut made by searching bytes: keys and values that spell the items
# key, brackets and quotes.
_TRICKY = st.sampled_from(['"items": [', "items", "]", "[", '"', "\\", "}", '"items":[]}', "é"])
_TEXT = st.lists(st.one_of(_TRICKY, st.text(max_size=4)), max_size=4).map("".join)
_KEYS = st.one_of(st.sampled_from(["items", "id", "summary", "extendedProperties"]), _TEXT)
_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), _TEXT),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_KEYS, inner, max_size=3)),
    max_leaves=12,
)
_EVENTS = st.lists(st.dictionaries(_KEYS, _VALUES, max_size=4), max_size=4)
_TOKENS = st.one_of(st.none(), _TEXT)
_TOKEN_NAMES = ("nextPageToken", "nextSyncToken", "timeZone")


@st.composite
def pages(draw: st.DrawFn) -> tuple[bytes, dict[str, Any]]:
    """A listing as Google might write it (any key order, compact or indented), and what it
    holds."""
    others = _TEXT.filter(lambda key: key not in ("items", *_TOKEN_NAMES))
    page: dict[str, Any] = draw(st.dictionaries(others, _VALUES))
    for name in _TOKEN_NAMES:
        if (token := draw(_TOKENS)) is not None:
            page[name] = token
    if draw(st.booleans()):
        page["items"] = draw(_EVENTS)
    order = draw(st.permutations(list(page)))
    page = {key: page[key] for key in order}
    compact, indent = draw(st.sampled_from([(True, None), (False, None), (False, 1)]))
    text = json.dumps(
        page,
        ensure_ascii=draw(st.booleans()),
        separators=(",", ":") if compact else None,
        indent=indent,
    )
    return text.encode(), page


@settings(max_examples=400, deadline=None)
@given(pages())
def test_a_raw_page_reads_what_a_full_parse_reads(case: tuple[bytes, dict[str, Any]]) -> None:
    body, page = case
    raw = RawEventsPage.parse(body)
    assert orjson.loads(raw.items_json) == page.get("items", [])
    assert raw.count == len(page.get("items", []))
    assert (raw.next_page_token, raw.next_sync_token, raw.time_zone) == (
        page.get("nextPageToken"),
        page.get("nextSyncToken"),
        page.get("timeZone"),
    )


@settings(max_examples=300, deadline=None)
@given(pages(), st.data())
def test_a_cut_short_or_extended_page_is_refused(
    case: tuple[bytes, dict[str, Any]], data: st.DataObject
) -> None:
    body, _ = case
    cut = data.draw(st.integers(0, len(body) - 1))
    broken = data.draw(st.sampled_from([body[:cut], body + b"]", body + b"[]", body + b"}"]))
    with pytest.raises(UpstreamUnavailable):
        RawEventsPage.parse(broken)


def test_the_events_are_googles_bytes_not_a_copy_made_from_a_parse() -> None:
    """The splice keeps Google's text as it is (its escapes, its key order), where a parse
    and re-serialization would rewrite it."""
    items = b'[{"summary":"\\u00e9t\\u00e9 \\"items\\": [","id":"a"},{"id":"b"}]'
    body = b'{"kind":"calendar#events","items":' + items + b',"nextSyncToken":"s1"}'
    page = RawEventsPage.parse(body)
    assert page.items_json == items
    assert (page.count, page.next_sync_token) == (2, "s1")


def test_an_items_key_that_is_not_the_listings_is_not_taken_for_it() -> None:
    page = RawEventsPage.parse(b'{"defaults":{"items":[{"id":"x"}]},"items":[{"id":"a"}]}')
    assert orjson.loads(page.items_json) == [{"id": "a"}]
    page = RawEventsPage.parse(b'{"kind":"calendar#events","defaults":{"items":[{"id":"x"}]}}')
    assert (page.items_json, page.count) == (b"[]", 0)
    with pytest.raises(UpstreamUnavailable):  # the listing's items must be an array
        RawEventsPage.parse(b'{"items":{"items":[{"id":"x"}]}}')


def test_items_that_are_not_events_are_refused_on_either_path() -> None:
    for body in (b'{"items":[1,2]}', b'{"kind":"x","items":[[]],"nextPageToken":"]"}'):
        with pytest.raises(UpstreamUnavailable):
            RawEventsPage.parse(body)


def test_an_event_with_a_number_simdjson_cannot_hold_is_a_malformed_page() -> None:
    """Google sends no integer past 64 bits; a page with one is refused as malformed (a
    negative one escaped as simdjson's RuntimeError)."""
    big = str(-(2**63) - 1).encode()
    with pytest.raises(UpstreamUnavailable):
        RawEventsPage.parse(b'{"items":[{"id":"a","sequence":' + big + b"}]}")


def test_a_page_the_splice_cannot_prove_is_parsed_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the cut is not proven (here a top-level token after the array holds a bracket),
    the page is parsed whole and its items copied: the same events either way."""
    copies: list[bytes] = []
    copied = calendar_api._copied

    def counted(body: bytes) -> RawEventsPage:
        copies.append(body)
        return copied(body)

    monkeypatch.setattr(calendar_api, "_copied", counted)
    body = b'{"items":[{"id":"a"}],"nextPageToken":"p]"}'
    page = RawEventsPage.parse(body)
    assert (orjson.loads(page.items_json), page.next_page_token) == ([{"id": "a"}], "p]")
    assert copies == [body]
    RawEventsPage.parse(b'{"items":[{"id":"a"}],"nextPageToken":"p"}')
    assert copies == [body]  # provable: spliced, no copy
