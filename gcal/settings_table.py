"""The README's configuration table, rendered from :class:`~gcal.settings.Settings`.

Between ``<!-- generated:settings -->`` and ``<!-- /generated:settings -->`` README.md holds
one row per setting: its ``GCAL_*`` variable, its default (written as in ``.env.example``, by
:mod:`gcal.envfile`) and its description. ``python -m gcal write-readme`` rewrites the block;
``tests/test_settings_table.py`` fails when it is stale, so a new setting cannot be left out.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from gcal.envfile import default_of, env_name, env_value
from gcal.settings import Settings

README = Path(__file__).resolve().parent.parent / "README.md"
_BLOCK = re.compile(r"(<!-- generated:settings -->\n).*?(<!-- /generated:settings -->)", re.S)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def table(settings: type[BaseModel] = Settings) -> str:
    """The Markdown table of every setting, in declaration order."""
    lines = ["| variable | default | what it sets |", "|---|---|---|"]
    for name, field in settings.model_fields.items():
        default = env_value(default_of(field))
        shown = f"`{_cell(default)}`" if default else "(empty)"
        lines.append(
            f"| `{env_name(name, settings)}` | {shown} | {_cell(field.description or '')} |"
        )
    return "\n".join(lines) + "\n"


def render(document: str) -> str:
    """``document`` with its settings block rewritten; ValueError if it has none."""
    if not _BLOCK.search(document):
        raise ValueError("README.md has no <!-- generated:settings --> block")
    return _BLOCK.sub(lambda match: match[1] + table() + match[2], document)


def write(path: Path = README) -> Path:
    path.write_text(render(path.read_text()))
    return path
