"""The README's configuration table is generated from Settings and is current: a setting
added, renamed or redescribed without regenerating it fails here."""

from __future__ import annotations

from pathlib import Path

import pytest

from gcal.envfile import env_name
from gcal.settings import Settings
from gcal.settings_table import README, render, table, write


def test_the_readme_table_is_current() -> None:
    text = README.read_text()
    assert render(text) == text, "regenerate: python -m gcal write-readme"


def test_every_setting_has_a_row_with_its_default() -> None:
    rows = table().splitlines()[2:]
    assert [row.split(" | ")[0].strip("| `") for row in rows] == [
        env_name(name) for name in Settings.model_fields
    ]
    assert "| `GCAL_STATE_TTL` | `600` | OAuth state lifetime, s. |" in rows


def test_a_stale_table_is_rewritten(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(
        "# doc\n\n<!-- generated:settings -->\n| old |\n<!-- /generated:settings -->\nend\n"
    )
    assert write(readme) == readme
    fresh = readme.read_text()
    assert fresh.startswith("# doc\n\n<!-- generated:settings -->\n| variable |")
    assert fresh.endswith("<!-- /generated:settings -->\nend\n")
    assert "| old |" not in fresh
    assert "`GCAL_WORKER_METRICS_PORT` | `8081` |" in fresh
    with pytest.raises(ValueError, match="no <!-- generated:settings --> block"):
        render("# no block\n")
