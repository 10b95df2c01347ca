"""Process logging: configured once per process, at its edge, from two settings.

    configure(settings.log_format, settings.log_level)     # every ``__main__`` does this

``GCAL_LOG_FORMAT=json`` writes one JSON object per line (``time``, ``level``, ``logger``,
``message``, the record's structured fields given with ``extra=``, and ``exc`` with the
traceback when there is one), for log collectors; ``text`` writes the same as plain lines for
people. Everything goes to stderr; stdout stays for what a command prints.

What reaches a log line is the caller's responsibility, and the rule is the same everywhere
(STYLE 12): job ids, job names, user ids, error codes and counts, never job arguments, event
data, tokens or secrets. arq's own per-job lines (arguments shown as ``<arguments>``) are
quieted below DEBUG: the worker writes one line of its own per finished job.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any, TextIO

import orjson

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

# Loggers of libraries whose INFO lines repeat what ours say (quieted unless level is DEBUG).
_CHATTY = ("arq.worker", "arq.jobs")
# The attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", logging.INFO, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
}


# Values json.dumps(default=str) would write as str(value): orjson's own forms differ.
_AS_STR = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        try:
            return orjson.dumps(line, default=str, option=_AS_STR).decode()
        except orjson.JSONEncodeError:  # what orjson refuses (a lone surrogate, a huge int)
            return json.dumps(line, default=str, ensure_ascii=False)


def configure(log_format: str, level: str, *, stream: TextIO | None = None) -> logging.Handler:
    """Send every log record at ``level`` or above to ``stream`` (stderr) in ``log_format``
    (``json`` or ``text``), replacing any earlier configuration; returns the handler."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    quiet = logging.NOTSET if logging.getLevelName(level) == logging.DEBUG else logging.WARNING
    for name in _CHATTY:
        logging.getLogger(name).setLevel(quiet)
    return handler
