"""``.env.example`` is rendered from Settings, is current, and reads back as the defaults."""

from __future__ import annotations

import io

import pytest
from dotenv import dotenv_values

from gcal.__main__ import main
from gcal.envfile import ENV_EXAMPLE, env_name, render
from gcal.settings import Settings


def test_checked_in_env_example_is_current() -> None:
    assert ENV_EXAMPLE.read_text() == render(), "regenerate: python -m gcal env-example"


def test_every_setting_is_described_and_listed() -> None:
    text = render()
    for name, field in Settings.model_fields.items():
        assert field.description, f"Settings.{name} has no description"
        assert f"\n# {env_name(name)}=" in text


def test_rendered_defaults_read_back_as_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    # Uncomment every variable line, read it as docker compose would (dotenv syntax), then
    # let Settings parse the values: each must come back as the field's own default.
    lines = [
        line.removeprefix("# ") for line in render().splitlines() if line.startswith("# GCAL_")
    ]
    values = dotenv_values(stream=io.StringIO("\n".join(lines)))
    assert len(values) == len(Settings.model_fields)
    for key, value in values.items():
        assert value is not None
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("GCAL_DEV_MODE", "true")  # the defaults hold no secrets
    assert Settings().model_dump() == Settings(dev_mode=True).model_dump()


def test_the_command_prints_the_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["env-example"]) == 0
    assert capsys.readouterr().out == render()
