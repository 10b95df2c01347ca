"""The generated parts of ``docs/contract.md``: the job index, the default OAuth scopes and
the notification index.

Between ``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->`` the document holds text
rendered here from the job declarations and the notification models; everything else in it
is written by hand. ``python -m jobs write-contract`` rewrites those blocks, and a test fails
when they are stale.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from pydantic import BaseModel

from gcal.notifications import NOTIFICATION_TYPES, notification_type
from gcal.scopes import least_privilege
from jobs.registry import JOBS, default_scopes

CONTRACT = Path(__file__).resolve().parent.parent / "docs" / "contract.md"
_BLOCK = re.compile(
    r"(<!-- generated:(?P<name>[a-z-]+) -->\n).*?(<!-- /generated:(?P=name) -->)", re.S
)
_COMMON = {"type", "at"}


def _doc(obj: object) -> str:
    return " ".join((inspect.getdoc(obj) or "").split())


def _fields(model: type[BaseModel]) -> str:
    names = [name for name in model.model_fields if name not in _COMMON]
    return ", ".join(f"`{name}`" for name in names)


def job_index() -> str:
    lines = [
        "| job | what it does | OAuth scope it needs | arguments | data |",
        "|---|---|---|---|---|",
    ]
    for name, spec in JOBS.items():
        scopes = ", ".join(f"`{scope}`" for scope in least_privilege(spec.needs)) or "none"
        lines.append(
            f"| [`{name}`](#{name}) | {spec.summary} | {scopes} "
            f"| [schema](schemas/{name}.args.schema.json) "
            f"| [schema](schemas/{name}.data.schema.json) |"
        )
    return "\n".join(lines) + "\n"


def scope_index() -> str:
    """The scopes users are asked for by default, each with the jobs it serves."""
    lines = ["| scope | serves |", "|---|---|"]
    for scope in default_scopes():
        served = [
            f"`{name}`"
            for name, spec in JOBS.items()
            if any(scope in need.accepted for need in spec.needs)
        ]
        lines.append(f"| `{scope}` | {', '.join(served)} |")
    return "\n".join(lines) + "\n"


def notification_index() -> str:
    lines = ["| type | when | fields (besides `type`, `at`) | schema |", "|---|---|---|---|"]
    for model in NOTIFICATION_TYPES:
        tag = notification_type(model)
        lines.append(
            f"| `{tag}` | {_doc(model)} | {_fields(model)} | [schema](schemas/{tag}.schema.json) |"
        )
    return "\n".join(lines) + "\n"


def sections() -> dict[str, str]:
    return {"jobs": job_index(), "scopes": scope_index(), "notifications": notification_index()}


def render(document: str) -> str:
    """``document`` with every generated block rewritten."""
    blocks = sections()

    def fill(match: re.Match[str]) -> str:
        name = match["name"]
        if name not in blocks:
            raise ValueError(f"docs/contract.md has an unknown generated block {name!r}")
        return match[1] + blocks[name] + match[3]

    return _BLOCK.sub(fill, document)


def blocks_in(document: str) -> set[str]:
    return {match["name"] for match in _BLOCK.finditer(document)}


def write(path: Path = CONTRACT) -> Path:
    path.write_text(render(path.read_text()))
    return path
