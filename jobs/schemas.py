"""JSON Schemas of the wire contract, generated from the pydantic models.

The files under ``docs/schemas/`` are checked in so non-Python producers can use them; a test
fails when they no longer match the models (regenerate: ``python -m jobs write-schemas``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from gcal.notifications import Notification
from jobs.contract import ARGUMENTS, DATA
from jobs.results import JobCompleted, JobResult

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "docs" / "schemas"


def _schema(model: type[BaseModel], title: str, mode: str = "validation") -> dict[str, Any]:
    schema = model.model_json_schema(mode=mode)  # type: ignore[arg-type]
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema, "title": title}


def schemas() -> dict[str, dict[str, Any]]:
    """File name -> schema, for every part of the contract."""
    out = {
        "result.schema.json": _schema(JobResult, "JobResult", "serialization"),
        "job_completed.schema.json": _schema(JobCompleted, "JobCompleted", "serialization"),
        "notification.schema.json": _schema(Notification, "Notification", "serialization"),
    }
    for name, model in ARGUMENTS.items():
        out[f"{name}.args.schema.json"] = _schema(model, f"{name} arguments")
    for name, model in DATA.items():
        out[f"{name}.data.schema.json"] = _schema(model, f"{name} result data", "serialization")
    return out


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in schemas().items():
        path = directory / name
        path.write_text(render(schema))
        written.append(path)
    return written
