"""The comparison's Celery baseline: our two benchmarked jobs as a typical Celery user writes
them, and the worker that runs them.

    python -m bench.celery_baseline < CONFIG_JSON   # what bench.compare starts, pinned to a CPU

That is ``celery worker --pool threads --concurrency 16 --prefetch-multiplier N`` on a Redis
broker (every other worker option Celery's default: gossip, mingle, heartbeat, remote control),
with two tasks that each make blocking google-api-python-client calls:

* ``get_events``: one ``events.list`` page (``singleEvents``, a time window, ``maxResults``);
* ``create_event``: ``events.insert`` with a client-chosen id derived from the task id, so a
  re-run is idempotent (Google's 409 -> ``events.get`` of that id, ``created: false``).

Each thread builds the Calendar service once (``static_discovery=True``, pointed at the
emulator with ``client_options``) with its own ``httplib2.Http``; each call runs with the
user's google-auth credentials (a bearer token) through ``.execute(http=AuthorizedHttp(...))``,
the library's documented way to share a service between users. The user's access token is
read from Redis per task (plain JSON: no encryption, no refresh). The JSON result is written
to a key and announced on a channel in one MULTI/EXEC, loosely the shape of our contract (our
worker also XADDs to a stream and publishes on a second channel). Celery's own result backend
is off (``task_ignore_result``).

The configuration (:class:`BaselineConfig`) arrives as JSON on stdin. The worker prints
``ready`` on stdout when Celery's ``worker_ready`` signal fires and exits on SIGTERM (Celery's
warm shutdown). Every Redis name it uses, the broker's included (kombu's ``global_keyprefix``),
starts with the run's prefix and is spelled by :class:`BaselineNames`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import sys
import threading
import warnings
from dataclasses import asdict, dataclass
from typing import Any, cast

import google.oauth2.credentials
import httplib2
import redis
from celery import Celery
from celery.exceptions import SecurityWarning
from celery.signals import worker_ready
from google_auth_httplib2 import AuthorizedHttp
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

READY = "ready"
CONCURRENCY = 16
QUEUE = "jobs"
RESULT_TTL_SECONDS = 24 * 3600
HTTP_TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class BaselineNames:
    """Every Redis name of the baseline, all under the run's prefix (so one SCAN cleans up)."""

    prefix: str

    @property
    def broker_prefix(self) -> str:
        """kombu's ``global_keyprefix``: every key and channel of the broker starts with it."""
        return f"{self.prefix}:celery:"

    def token(self, user_id: str) -> str:
        """String (JSON ``{"access_token": ...}``): the user's current access token."""
        return f"{self.prefix}:celery:token:{user_id}"

    def result(self, job_id: str) -> str:
        """String (JSON): the task's result envelope."""
        return f"{self.prefix}:celery:result:{job_id}"

    def result_channel(self, job_id: str) -> str:
        """Pub/sub channel: the task's completion, ``{"job_id", "ok", "result_key", ...}``."""
        return f"{self.prefix}:celery:result:{job_id}:done"

    def broker_queue_keys(self) -> list[str]:
        """The broker's queue (a list) and its unacked messages (kombu's default names)."""
        return [f"{self.broker_prefix}{name}" for name in (QUEUE, "unacked", "unacked_index")]


@dataclass(frozen=True)
class BaselineConfig:
    """What the worker (and the producer's app) need: Redis, the emulator, the prefetch."""

    redis_url: str
    prefix: str
    calendar_api_base: str  # ends in /calendar/v3/
    prefetch_multiplier: int = 4  # Celery's default

    @property
    def names(self) -> BaselineNames:
        return BaselineNames(self.prefix)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: str) -> BaselineConfig:
        return cls(**json.loads(raw))


class CalendarServices:
    """One Calendar service (and ``httplib2.Http``) per thread, built on first use."""

    def __init__(self, api_endpoint: str) -> None:
        self._api_endpoint = api_endpoint
        self._local = threading.local()

    def service(self) -> Any:
        service = getattr(self._local, "service", None)
        if service is None:
            self._local.http = httplib2.Http(timeout=HTTP_TIMEOUT_SECONDS)
            service = build(
                "calendar",
                "v3",
                http=self._local.http,
                static_discovery=True,
                cache_discovery=False,
                client_options={"api_endpoint": self._api_endpoint},
            )
            self._local.service = service
        return service

    def http_for(self, access_token: str) -> AuthorizedHttp:
        """The thread's connection, authorized as the user (call after :meth:`service`)."""
        credentials = google.oauth2.credentials.Credentials(token=access_token)  # type: ignore[no-untyped-call]
        return AuthorizedHttp(credentials, http=self._local.http)


class Tasks:
    """The task bodies, with what they share: Redis (thread-safe pool) and the services."""

    def __init__(self, config: BaselineConfig) -> None:
        self.names = config.names
        self.redis = redis.Redis.from_url(config.redis_url)
        self.calendar = CalendarServices(config.calendar_api_base)

    def _authorized(self, user_id: str) -> tuple[Any, AuthorizedHttp]:
        raw = cast(bytes | None, self.redis.get(self.names.token(user_id)))
        if raw is None:
            raise LookupError(f"no token for user {user_id}")
        token = json.loads(raw)["access_token"]
        service = self.calendar.service()
        return service, self.calendar.http_for(token)

    def record(self, job_id: str, job: str, data: dict[str, Any] | None, error: str | None) -> None:
        """Write the result, then announce it, in one MULTI/EXEC."""
        key = self.names.result(job_id)
        now = dt.datetime.now(dt.UTC).isoformat()
        ok = error is None
        result = {"job_id": job_id, "job": job, "ok": ok, "data": data, "error": error}
        note = {"type": "job_completed", "job_id": job_id, "job": job, "ok": ok, "at": now}
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(key, json.dumps({**result, "finished_at": now}), ex=RESULT_TTL_SECONDS)
            pipe.publish(self.names.result_channel(job_id), json.dumps({**note, "result_key": key}))
            pipe.execute()

    def get_events(
        self,
        job_id: str,
        *,
        user_id: str,
        time_min: str,
        time_max: str,
        max_results: int = 250,
        calendar_id: str = "primary",
    ) -> None:
        try:
            service, http = self._authorized(user_id)
            page = (
                service.events()
                .list(
                    calendarId=calendar_id,
                    timeMin=time_min,
                    timeMax=time_max,
                    maxResults=max_results,
                    singleEvents=True,
                )
                .execute(http=http)
            )
        except (HttpError, LookupError) as err:
            self.record(job_id, "get_events", None, str(err))
            return
        data = {
            "events": page.get("items", []),
            "truncated": "nextPageToken" in page,
            "time_zone": page.get("timeZone"),
        }
        self.record(job_id, "get_events", data, None)

    def create_event(
        self, job_id: str, *, user_id: str, event: dict[str, Any], calendar_id: str = "primary"
    ) -> None:
        # Hex digits are base32hex too: a valid client-chosen Google event id.
        event_id = hashlib.sha256(f"{user_id}\n{calendar_id}\n{job_id}".encode()).hexdigest()
        try:
            service, http = self._authorized(user_id)
            events = service.events()
            try:
                created = events.insert(
                    calendarId=calendar_id, body={**event, "id": event_id}
                ).execute(http=http)
                data = {"event": created, "created": True}
            except HttpError as err:
                if err.status_code != 409:
                    raise
                existing = events.get(calendarId=calendar_id, eventId=event_id).execute(http=http)
                data = {"event": existing, "created": False}
        except (HttpError, LookupError) as err:
            self.record(job_id, "create_event", None, str(err))
            return
        self.record(job_id, "create_event", data, None)


def make_app(config: BaselineConfig, tasks: Tasks | None = None) -> Celery:
    """The Celery app: Redis broker under the run's prefix, JSON only, no result backend.
    With ``tasks``, the two tasks are registered (the worker); without, it only sends."""
    app = Celery("bench_celery", broker=config.redis_url, set_as_current=False)
    app.conf.update(
        broker_transport_options={"global_keyprefix": config.names.broker_prefix},
        broker_connection_retry_on_startup=True,
        task_default_queue=QUEUE,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        worker_prefetch_multiplier=config.prefetch_multiplier,
        # Our stdout carries the ready line; Celery logs to stderr, as configured here.
        worker_redirect_stdouts=False,
        worker_hijack_root_logger=False,
    )
    if tasks is not None:

        def get_events(self: Any, **kwargs: Any) -> None:
            tasks.get_events(self.request.id, **kwargs)

        def create_event(self: Any, **kwargs: Any) -> None:
            tasks.create_event(self.request.id, **kwargs)

        app.task(name="get_events", bind=True)(get_events)
        app.task(name="create_event", bind=True)(create_event)
    return app


def worker_argv(config: BaselineConfig) -> list[str]:
    """``celery worker`` as the issue states it: threads, 16 of them, the given prefetch."""
    return [
        "--quiet",  # no banner: stdout carries only the ready line
        "worker",
        "--pool",
        "threads",
        "--concurrency",
        str(CONCURRENCY),
        "--prefetch-multiplier",
        str(config.prefetch_multiplier),
        "--queues",
        QUEUE,
        "--hostname",
        f"bench@{config.prefix}",
        "--loglevel",
        "WARNING",
    ]


def announce_ready(**_: object) -> None:
    print(READY, flush=True)


def main() -> int:
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s"
    )
    # The bench runs as root here and in CI; with JSON-only content Celery merely warns.
    warnings.filterwarnings("ignore", category=SecurityWarning)
    config = BaselineConfig.from_json(sys.stdin.read())
    app = make_app(config, Tasks(config))
    worker_ready.connect(announce_ready, weak=False)
    app.worker_main(worker_argv(config))  # returns after SIGTERM (warm shutdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
