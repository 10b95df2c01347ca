"""What every job's arguments share: the base model and the common argument types.

Arguments arrive as a JSON object (arq's ``k``) and are validated in JSON mode: unknown
arguments are refused and types are strict JSON types (``"5"`` is not a number).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from gcal.keys import USER_ID_RE

UserId = Annotated[str, Field(pattern=f"^{USER_ID_RE.pattern}$", min_length=1, max_length=128)]
SendUpdates = Literal["all", "externalOnly", "none"]


class JobArgs(BaseModel):
    """Arguments of a job on behalf of one user (every job has ``user_id``)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    user_id: UserId
