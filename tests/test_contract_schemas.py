"""The checked-in JSON Schemas match the models (non-Python producers rely on them)."""

from __future__ import annotations

from jobs.contract import ARGUMENTS, DATA
from jobs.registry import JOB_NAMES
from jobs.schemas import SCHEMA_DIR, render, schemas


def test_checked_in_schemas_are_current() -> None:
    expected = schemas()
    stale = [
        name
        for name, schema in expected.items()
        if not (SCHEMA_DIR / name).is_file() or (SCHEMA_DIR / name).read_text() != render(schema)
    ]
    assert stale == [], "regenerate with: python -m jobs write-schemas"
    extra = {p.name for p in SCHEMA_DIR.glob("*.json")} - set(expected)
    assert extra == set(), "schemas of jobs that no longer exist"


def test_every_registered_job_has_a_documented_contract() -> None:
    assert set(ARGUMENTS) == set(DATA) == JOB_NAMES
