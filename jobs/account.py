"""Account jobs: disconnect (revoke at Google, forget everything kept for the user)."""

from __future__ import annotations

from pydantic import BaseModel

from gcal.services import Services
from jobs.arguments import JobArgs
from jobs.spec import JobRun, job


class DisconnectArgs(JobArgs):
    """Revoke the user's grant at Google and forget everything kept for the user."""


class DisconnectData(BaseModel):
    was_linked: bool


@job()
async def disconnect(s: Services, args: DisconnectArgs, run: JobRun) -> DisconnectData:
    """Revoke the user's grant at Google and forget everything kept for the user."""
    return DisconnectData(was_linked=await s.accounts.disconnect(args.user_id))
