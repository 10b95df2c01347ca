"""Reading :class:`~gcal.settings.Settings` from the environment at a process edge: all of it,
or only the settings a command uses; a bad value is reported as one line naming its variable.

    settings = settings_or_exit("python -m worker")                  # a whole process
    settings = settings_or_exit("python -m worker", only=REDIS)       # a Redis-only command

A Redis-only command (``worker --check``, ``gcal reencrypt-tokens``, the jobs CLI) validates
just the fields it names (plus the log settings); the rest of the returned object keeps its
defaults, unvalidated, and must not be used: such a command never starts a service. The fields
are Settings' own (type, default, constraints), so there is still one definition of each.

What is printed names the variable and the rule, never the value (it may be a secret)::

    python -m worker: bad configuration: GCAL_STATE_TTL: Input should be greater than or equal to 30
"""

from __future__ import annotations

import copy
import re
import sys
from collections.abc import Collection
from typing import Any

from pydantic import ValidationError, create_model
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from gcal.envfile import env_name
from gcal.settings import Settings

# What every command reads, whatever else it needs.
LOGGING = ("log_format", "log_level")
REDIS = ("redis_url", "redis_prefix")

_FIELD_IN_SETTINGS_ERROR = re.compile(r'field "([a-z_0-9]+)"')


class ConfigError(Exception):
    """Settings that do not validate: one human-readable line per problem."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("; ".join(lines))
        self.lines = lines


class _Part(BaseSettings):
    # Other GCAL_* variables may be set (the process's full configuration): not ours to check.
    model_config = SettingsConfigDict(
        env_prefix=str(Settings.model_config.get("env_prefix", "")), extra="ignore", frozen=True
    )


def _part_of_settings(names: Collection[str]) -> type[BaseSettings]:
    """A settings model of just ``names``, each field exactly as Settings declares it."""
    decorated = {
        field
        for decorator in Settings.__pydantic_decorators__.field_validators.values()
        for field in decorator.info.fields
    }
    fields: dict[str, Any] = {}
    for name in names:
        if name not in Settings.model_fields:
            raise ValueError(f"Settings has no field {name!r}")
        if name in decorated:
            # Its validator would be left behind; give the field an annotated type instead.
            raise TypeError(f"Settings.{name} has a decorator validator; it cannot be loaded alone")
        field = Settings.model_fields[name]
        fields[name] = (field.annotation, copy.copy(field))
    model: type[BaseSettings] = create_model("Settings", __base__=_Part, **fields)
    return model


def describe(err: ValidationError | SettingsError) -> list[str]:
    """One line per bad setting, naming its ``GCAL_*`` variable and never its value."""
    if isinstance(err, SettingsError):
        found = _FIELD_IN_SETTINGS_ERROR.search(str(err))
        where = env_name(found.group(1)) if found else "a GCAL_* variable"
        return [f'{where}: cannot be parsed (lists are JSON, e.g. \'["a", "b"]\')']
    lines = []
    for error in err.errors(include_url=False, include_input=False, include_context=False):
        message = error["msg"].removeprefix("Value error, ")
        loc = error["loc"]
        if not loc:
            lines.append(message)  # a rule across settings; its message names the variables
            continue
        where = env_name(str(loc[0]))
        if len(loc) > 1:
            where += " (item " + ".".join(str(part) for part in loc[1:]) + ")"
        lines.append(f"{where}: {message}")
    return lines


def load(only: Collection[str] | None = None) -> Settings:
    """Settings from ``GCAL_*`` variables: every field, or only ``only`` (and the log
    settings; see the module docstring). :class:`ConfigError` when they do not validate."""
    try:
        if only is None:
            return Settings()
        names = list(dict.fromkeys([*LOGGING, *only]))
        part = _part_of_settings(names)()
        return Settings.model_construct(**{name: getattr(part, name) for name in names})
    except (ValidationError, SettingsError) as err:
        raise ConfigError(describe(err)) from None


def settings_or_exit(prog: str, only: Collection[str] | None = None) -> Settings:
    """:func:`load`, or each problem on a line of stderr and exit status 2."""
    try:
        return load(only)
    except ConfigError as err:
        for line in err.lines:
            print(f"{prog}: bad configuration: {line}", file=sys.stderr)  # noqa: T201
        raise SystemExit(2) from None
