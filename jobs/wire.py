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


def loads_job(data: bytes | str) -> Any:
    """arq's job deserializer: JSON, and shaped like a job (``a`` a list, ``k`` an object).

    A payload that is not (a pickle, a list for ``k``) raises here, so arq records the job as
    failed before any job function runs, and the worker still writes a typed result for it.
    """
    value = json.loads(data)
    if not isinstance(value, dict):
        raise ValueError("a job payload is a JSON object")
    if not isinstance(value.get("f"), str):
        raise ValueError("a job payload names its job in 'f'")
    if not isinstance(value.get("a", []), list) or not isinstance(value.get("k", {}), dict):
        raise ValueError("a job payload has 'a' (a list) and 'k' (an object)")
    return value
