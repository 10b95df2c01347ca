"""The ``.env.example`` file: every :class:`~gcal.settings.Settings` field as a commented
``GCAL_*`` line, with its default and its description, rendered from the model itself::

    python -m gcal env-example > .env.example

So the list of variables an operator can set has one source, the Settings class; a test
(``tests/test_envfile.py``) fails when the checked-in file no longer matches it. Values are
written in the dotenv syntax that ``docker compose`` reads (``env_file``, ``.env``): lists as
JSON in single quotes, booleans as ``true``/``false``.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from gcal.settings import Settings

ENV_EXAMPLE = Path(__file__).resolve().parent.parent / ".env.example"

HEADER = """\
# gcal-jobs settings: one GCAL_* environment variable per setting, shown with its default.
# Generated from gcal.settings.Settings by `python -m gcal env-example`; do not edit by hand
# (tests/test_envfile.py fails when this file is stale).
#
# Copy it to .env (docker compose reads it, see compose.yaml) and uncomment what you set.
# Lists are JSON. Outside GCAL_DEV_MODE=true the processes refuse to start without a real
# GCAL_CLIENT_ID, GCAL_CLIENT_SECRET, GCAL_TOKEN_KEYS and GCAL_API_KEYS.
"""


def env_name(field: str, settings: type[BaseModel] = Settings) -> str:
    """The environment variable that sets ``field``."""
    prefix = str(settings.model_config.get("env_prefix", ""))
    return f"{prefix}{field}".upper()


def env_value(value: object) -> str:
    """``value`` written as a dotenv value that Settings reads back as the same value."""
    if isinstance(value, tuple | list):
        return "'" + json.dumps([_plain(item) for item in value]) + "'"
    if value is None:
        return ""  # unset (Settings reads an empty variable as unset)
    plain = _plain(value)
    return plain if isinstance(plain, str) else json.dumps(plain)


def process_env(settings: BaseModel) -> dict[str, str]:
    """``settings`` as the environment of a child process that reads them back as they are
    (secrets included): the fields that are set, each as :func:`process_value`."""
    return {
        env_name(name, type(settings)): process_value(value)
        for name, value in settings
        if value is not None
    }


def process_value(value: object) -> str:
    """A setting's value as an environment variable holds it: lists as JSON, booleans as
    ``true``/``false``, secrets revealed, without dotenv's quoting."""
    if isinstance(value, tuple | list):
        return json.dumps([_plain(item) for item in value])
    plain = _plain(value)
    return plain if isinstance(plain, str) else json.dumps(plain)


def _plain(value: object) -> str | int | float | bool | None:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None or isinstance(value, int | float | str):
        return value
    return str(value)  # URLs, DSNs


def default_of(field: FieldInfo) -> object:
    """The default of a settings field, as Settings would fill it in."""
    return field.get_default(call_default_factory=True)


def render(settings: type[BaseModel] = Settings) -> str:
    """The whole ``.env.example`` text for ``settings``."""
    blocks = [HEADER]
    for name, field in settings.model_fields.items():
        lines = textwrap.wrap(field.description or "", width=96)
        lines.append(f"{env_name(name, settings)}={env_value(default_of(field))}")
        blocks.append("".join(f"# {line}\n" for line in lines))
    return "\n".join(blocks)
