"""JSON Schemas of the wire contract, generated from the models.

The files under ``docs/schemas/`` are checked in so non-Python producers can use them; a test
fails when they no longer match the models (regenerate: ``python -m jobs write-contract``).
Per job: ``<job>.args.schema.json`` and ``<job>.data.schema.json``; per notification type:
``<type>.schema.json``; plus the result envelope and the union of all notifications.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, TypeAdapter

from gcal.notifications import NOTIFICATION_TYPES, Notification, notification_type
from jobs.registry import JOBS
from jobs.results import JobResult

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "docs" / "schemas"
_DIALECT = "https://json-schema.org/draft/2020-12/schema"

Mode = Literal["validation", "serialization"]


def _schema(model: type[BaseModel], title: str, mode: Mode = "validation") -> dict[str, Any]:
    return {"$schema": _DIALECT, **model.model_json_schema(mode=mode), "title": title}


def schemas() -> dict[str, dict[str, Any]]:
    """File name -> schema, for every part of the contract."""
    union = TypeAdapter(Notification).json_schema(mode="serialization")
    out = {
        "result.schema.json": _schema(JobResult, "JobResult", "serialization"),
        "notification.schema.json": {"$schema": _DIALECT, **union, "title": "Notification"},
    }
    for model in NOTIFICATION_TYPES:
        tag = notification_type(model)
        out[f"{tag}.schema.json"] = _schema(model, f"{tag} notification", "serialization")
    for name, spec in JOBS.items():
        out[f"{name}.args.schema.json"] = _schema(spec.args, f"{name} arguments")
        out[f"{name}.data.schema.json"] = _schema(spec.data, f"{name} result data", "serialization")
    return out


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Write every schema; remove schemas of jobs or notifications that no longer exist."""
    directory.mkdir(parents=True, exist_ok=True)
    current = schemas()
    for stale in directory.glob("*.schema.json"):
        if stale.name not in current:
            stale.unlink()
    written = []
    for name, schema in current.items():
        path = directory / name
        path.write_text(render(schema))
        written.append(path)
    return written
