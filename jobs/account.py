"""Account jobs: disconnect (revoke at Google, forget everything kept for the user)."""

from __future__ import annotations

from jobs.contract import DisconnectArgs, DisconnectData
from jobs.deps import JobDeps, JobInfo


async def disconnect(d: JobDeps, args: DisconnectArgs, job: JobInfo) -> DisconnectData:
    return DisconnectData(was_linked=await d.tokens.disconnect(args.user_id))
