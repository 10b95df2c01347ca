"""The service's one configuration object.

Built once at each process edge (`python -m worker`, `python -m auth_web`) from the
environment (prefix ``GCAL_``) and handed down; nothing reads the environment elsewhere::

    settings = Settings()                      # reads GCAL_* variables
    settings = Settings(calendar_api_base=...)  # tests construct it explicitly

Every Google URL is a setting, defaulting to Google's real endpoint, so the same code talks
to Google in production and to the local emulator (`python -m emulator`) in tests and dev.

``scopes`` left unset (None) means "what the jobs need": the core knows nothing of jobs, so
each process fills it in at its edge (``jobs.registry.resolved``, called by auth_web's
``create_app`` and the worker factory) before building its services.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BeforeValidator,
    Field,
    RedisDsn,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from gcal.scopes import KNOWN_SCOPES

GOOGLE_AUTHORIZATION_ENDPOINT = "https://accounts.google.com/o/oauth2/v2/auth"
GOOGLE_TOKEN_ENDPOINT = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL, not a secret
GOOGLE_REVOKE_ENDPOINT = "https://oauth2.googleapis.com/revoke"
GOOGLE_CALENDAR_API_BASE = "https://www.googleapis.com/calendar/v3/"
GOOGLE_BATCH_ENDPOINT = "https://www.googleapis.com/batch/calendar/v3"

# Values that mark a secret as "not configured"; refused outside dev mode.
_PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "dev"})


def _capitals(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


def _known_scope(scope: str) -> str:
    if scope not in KNOWN_SCOPES:
        raise ValueError("not a Google Calendar or sign-in scope, as Google spells it")
    return scope


def _scope_list(scopes: tuple[str, ...] | None) -> tuple[str, ...] | None:
    if scopes is not None and not scopes:
        raise ValueError("names no scope (unset it for the jobs' own)")
    return tuple(dict.fromkeys(scopes)) if scopes is not None else None


Scope = Annotated[str, AfterValidator(_known_scope)]


class Settings(BaseSettings):
    """Typed settings for every gcal-jobs process."""

    # An empty variable counts as unset (``GCAL_PUSH_WEBHOOK_URL=`` in a .env file).
    model_config = SettingsConfigDict(
        env_prefix="GCAL_", extra="forbid", frozen=True, env_ignore_empty=True
    )

    dev_mode: bool = Field(
        default=False,
        description="Allow placeholder secrets and local defaults. Never set in production.",
    )

    # Google endpoints.
    authorization_endpoint: AnyHttpUrl = Field(
        default=AnyHttpUrl(GOOGLE_AUTHORIZATION_ENDPOINT),
        description="OAuth authorization endpoint, as the user's browser reaches it.",
    )
    token_endpoint: AnyHttpUrl = Field(
        default=AnyHttpUrl(GOOGLE_TOKEN_ENDPOINT),
        description="OAuth token endpoint (code exchange, refresh).",
    )
    revoke_endpoint: AnyHttpUrl = Field(
        default=AnyHttpUrl(GOOGLE_REVOKE_ENDPOINT), description="OAuth token revocation endpoint."
    )
    calendar_api_base: AnyHttpUrl = Field(
        default=AnyHttpUrl(GOOGLE_CALENDAR_API_BASE),
        description="Calendar v3 base URL; must end in /calendar/v3/.",
    )
    batch_endpoint: AnyHttpUrl = Field(
        default=AnyHttpUrl(GOOGLE_BATCH_ENDPOINT), description="Calendar v3 batch endpoint."
    )

    # OAuth client registered with Google.
    client_id: str = Field(
        default="", description="OAuth client id registered with Google. Required outside dev mode."
    )
    client_secret: SecretStr = Field(
        default=SecretStr(""), description="That client's secret. Required outside dev mode."
    )
    redirect_uri: AnyHttpUrl = Field(
        default=AnyHttpUrl("http://127.0.0.1:8080/auth/callback"),
        description="auth_web's /auth/callback as the browser reaches it; registered with the "
        "OAuth client.",
    )
    scopes: Annotated[tuple[Scope, ...] | None, AfterValidator(_scope_list)] = Field(
        default=None,
        description="OAuth scopes every user must grant. Unset: the fewest, narrowest scopes "
        "that serve every job (docs/contract.md lists them). Set, it replaces that list: "
        "those scopes plus email to record the account's email, say, or fewer (the jobs left "
        "unserved then answer scope_missing).",
    )

    # Account linking.
    token_keys: tuple[SecretStr, ...] = Field(
        default=(),
        description="Fernet keys for tokens at rest, newest first (rotation: prepend a key, "
        "then run python -m gcal reencrypt-tokens). Generate one: python -m gcal new-key. "
        "Required outside dev mode.",
    )
    api_keys: tuple[SecretStr, ...] = Field(
        default=(),
        description="Bearer keys calling services use on /auth/url (several, for rotation). "
        "Required outside dev mode.",
    )
    state_ttl: int = Field(default=600, ge=30, le=3600, description="OAuth state lifetime, s.")
    return_to_allowlist: tuple[str, ...] = Field(
        default=(),
        description="URL prefixes return_to may start with (scheme://host[:port]/path...).",
    )
    refresh_margin: int = Field(
        default=300, ge=0, description="Refresh access tokens this many seconds before expiry."
    )
    http_timeout: float = Field(default=20.0, gt=0, description="Per-request timeout to Google, s.")

    # Jobs.
    job_timeout: float = Field(default=120.0, gt=1, description="Seconds one job try may run.")
    job_max_tries: int = Field(default=8, ge=1, description="Runs of one job, retries included.")
    # 160: at Google's latencies a worker waits more than it works; a job waiting on Google
    # holds no page, so memory grows little with this (bench/: peak RSS 109-113 MiB on
    # 250-event pages at 160).
    worker_max_jobs: int = Field(default=160, ge=1, description="Concurrent jobs per worker.")
    worker_event_loop: Literal["uvloop", "asyncio"] = Field(
        default="uvloop",
        description="The worker's event loop: uvloop (libuv; about 10% less CPU per job, "
        "measured in bench/) or the standard library's asyncio.",
    )
    worker_poll_delay: float = Field(
        default=0.5,
        gt=0,
        description="Longest wait between queue reads when nothing wakes a worker (producers "
        "that publish the wake signal are served at once; see bench/).",
    )
    # At least 1: with 0, arq cancels even its own bookkeeping of a job that has already
    # answered, and the worker exits with an error (measured in bench/).
    worker_drain_seconds: int = Field(
        default=30, ge=1, description="On SIGTERM, seconds running jobs get to finish."
    )
    job_retry_budget: int = Field(
        default=7,
        ge=0,
        le=100,
        description="Failed Google requests one job may retry, in the call and by deferring "
        "together: a job sends at most this many requests more than a failure-free run.",
    )
    retry_base_seconds: float = Field(default=2.0, gt=0, description="First deferral of a job.")
    retry_max_seconds: float = Field(default=300.0, gt=0, description="Longest deferral.")
    get_events_max_pages: int = Field(
        default=20, ge=1, description="Pages one get_events job follows before reporting a cut."
    )

    # Calendar sync (gcal.sync, gcal.sync_schedule) and push (gcal.push).
    sync_enabled: bool = Field(
        default=True,
        description="Workers keep every linked user's calendars synced and announce changes.",
    )
    sync_interval_seconds: float = Field(
        default=300.0, gt=0, description="How often each calendar is synced by polling, s."
    )
    sync_push_interval_seconds: float = Field(
        default=3600.0,
        ge=1,
        description="With push on, the slower polling that still runs as a fallback, s.",
    )
    sync_calendar_list_interval_seconds: float = Field(
        default=6 * 3600.0, ge=1, description="How often a user's calendar list is re-read, s."
    )
    sync_tick_seconds: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="How often each worker looks for due syncs, s (a push is seen this fast).",
    )
    sync_jitter: float = Field(
        default=0.1, ge=0, le=0.5, description="Fraction by which sync times are spread."
    )
    sync_window_past_days: int = Field(
        default=30, ge=0, le=3650, description="A full listing reaches this many days back."
    )
    sync_window_future_days: int = Field(
        default=365, ge=1, le=3650, description="A full listing reaches this many days ahead."
    )
    sync_page_size: int = Field(
        default=1000, ge=1, le=2500, description="Events per page when syncing."
    )
    sync_event_types: tuple[str, ...] = Field(
        default=(),
        description="Only sync events of these eventTypes (empty: all, future types included).",
    )
    push_webhook_url: AnyHttpUrl | None = Field(
        default=None,
        description="Public https URL of auth_web's /webhooks/google/calendar; set it to turn "
        "push notifications on (polling stays, slower, as a fallback).",
    )
    push_channel_ttl_seconds: int = Field(
        default=7 * 86400, ge=60, description="Lifetime asked for each push channel, s."
    )
    push_renew_before_seconds: int = Field(
        default=86400, ge=0, description="Renew a push channel this long before it expires, s."
    )

    # The auth_web server.
    auth_web_host: str = Field(
        default="127.0.0.1", description="Address auth_web listens on (0.0.0.0 in a container)."
    )
    auth_web_port: int = Field(default=8080, ge=0, le=65535, description="Port auth_web serves.")

    # Infrastructure.
    redis_url: RedisDsn = Field(
        default=RedisDsn("redis://127.0.0.1:6379/0"),
        description="Redis for the queue, results, tokens and rate limits.",
    )
    redis_prefix: str = Field(
        default="gcal",
        pattern=r"^[A-Za-z0-9_.-]{1,32}$",
        description="Prefix of every Redis name this deployment uses.",
    )

    # Google quotas.
    quota_user_per_window: int = Field(
        default=600, ge=0, description="Requests per user per window (0: unlimited)."
    )
    quota_project_per_window: int = Field(
        default=10_000, ge=0, description="Requests per project per window (0: unlimited)."
    )
    quota_window_seconds: float = Field(
        default=60.0, gt=0, description="Length of the sliding quota window, s."
    )
    quota_breaker_seconds: float = Field(
        default=900.0, gt=0, description="How long a user's calls stop after quotaExceeded, s."
    )
    quota_headroom: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="Fraction added to the quota window, headroom for network-delay jitter.",
    )

    # Observability.
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="Log lines as text, or as JSON objects one per line (the container "
        "image's default).",
    )
    log_level: Annotated[
        Literal["DEBUG", "INFO", "WARNING", "ERROR"], BeforeValidator(_capitals)
    ] = Field(default="INFO", description="The lowest level logged.")
    worker_metrics_host: str = Field(
        default="127.0.0.1",
        description="Address the worker's Prometheus /metrics listens on (0.0.0.0 in a container).",
    )
    worker_metrics_port: int = Field(
        default=8081,
        ge=0,
        le=65535,
        description="Port of the worker's Prometheus /metrics; 0 turns it off. Worker "
        "processes sharing a host (and its network) each need their own.",
    )

    @field_validator("calendar_api_base")
    @classmethod
    def _calendar_base_shape(cls, value: AnyHttpUrl) -> AnyHttpUrl:
        if not str(value).endswith("/calendar/v3/"):
            raise ValueError("must end with /calendar/v3/")
        return value

    @model_validator(mode="after")
    def _no_placeholder_secrets(self) -> Settings:
        if self.dev_mode:
            return self
        if self.client_id.strip().lower() in _PLACEHOLDER_SECRETS:
            raise ValueError("client_id is not set (GCAL_CLIENT_ID); only dev mode may omit it")
        if self.client_secret.get_secret_value().strip().lower() in _PLACEHOLDER_SECRETS:
            raise ValueError(
                "client_secret is not set (GCAL_CLIENT_SECRET); only dev mode may omit it"
            )
        if not self.token_keys:
            raise ValueError("token_keys is not set (GCAL_TOKEN_KEYS); only dev mode may omit it")
        if not self.api_keys or any(
            k.get_secret_value().strip().lower() in _PLACEHOLDER_SECRETS for k in self.api_keys
        ):
            raise ValueError("api_keys is not set (GCAL_API_KEYS); only dev mode may omit it")
        return self
