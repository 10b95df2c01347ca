"""The contract's derived artefacts match the declarations they come from: the checked-in
JSON Schemas, the generated blocks of docs/contract.md, and every job named in it."""

from __future__ import annotations

import re

from gcal.errors import ERROR_CODES
from gcal.notifications import NOTIFICATION_TYPES, notification_type
from jobs import contract_doc
from jobs.registry import JOBS
from jobs.schemas import SCHEMA_DIR, render, schemas

REGENERATE = "regenerate with: python -m jobs write-contract"


def test_checked_in_schemas_are_current() -> None:
    expected = schemas()
    stale = [
        name
        for name, schema in expected.items()
        if not (SCHEMA_DIR / name).is_file() or (SCHEMA_DIR / name).read_text() != render(schema)
    ]
    assert stale == [], REGENERATE
    extra = {p.name for p in SCHEMA_DIR.glob("*.json")} - set(expected)
    assert extra == set(), "schemas of jobs that no longer exist"


def test_every_job_and_notification_has_its_schemas() -> None:
    names = set(schemas())
    for job in JOBS:
        assert {f"{job}.args.schema.json", f"{job}.data.schema.json"} <= names
    for model in NOTIFICATION_TYPES:
        assert f"{notification_type(model)}.schema.json" in names


def test_the_generated_blocks_of_the_contract_are_current() -> None:
    text = contract_doc.CONTRACT.read_text()
    assert contract_doc.blocks_in(text) == set(contract_doc.sections())
    assert contract_doc.render(text) == text, REGENERATE


def test_the_contract_describes_exactly_the_declared_jobs() -> None:
    text = contract_doc.CONTRACT.read_text()
    described = set(re.findall(r"^### (\w+)$", text, re.M)) - {
        notification_type(m) for m in NOTIFICATION_TYPES
    }
    assert described == set(JOBS), "each job has a '### <name>' section, and only jobs do"


def test_the_contract_explains_every_error_code() -> None:
    text = contract_doc.CONTRACT.read_text()
    table = text[text.index("### Error codes") : text.index("## The jobs")]
    documented = set(re.findall(r"^\| `(\w+)` \|", table, re.M))
    assert documented == set(ERROR_CODES)
