"""JSON on the wire: how jobs, results and notifications are encoded (never pickle).

arq's job payload is JSON too (``{"t": try, "f": job name, "a": [], "k": {arguments},
"et": enqueue time ms}``), so any language can enqueue; see ``docs/contract.md``. A payload
that is not JSON (a pickle, say) fails to decode and the job is recorded as failed, never run.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any


def _fallback(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, BaseException):
        # arq stores a failed job's exception in its own result record.
        return {"error": type(value).__name__, "message": str(value)}
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> bytes:
    return json.dumps(value, default=_fallback, separators=(",", ":")).encode()


def loads(data: bytes | str) -> Any:
    return json.loads(data)
