"""The emulator's configuration: registered OAuth clients, behaviour switches and limits.

Where ``google-api-facts.md`` marks a Google behaviour as unsure ([I]), the behaviour is a
field here, so a test can pin either reading.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEMO_CLIENT_ID = "demo-client.apps.googleusercontent.com"
DEMO_CLIENT_SECRET = "demo-client-secret"  # noqa: S105 - the emulator's public demo client
DEMO_REDIRECT_URIS = (
    "http://127.0.0.1:8080/auth/callback",
    "http://localhost:8080/auth/callback",
)


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """An OAuth client registered with the emulator."""

    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]
    name: str = "Demo app"


@dataclass(frozen=True, slots=True)
class QuotaConfig:
    """Sliding one-minute request limits (0 = unlimited), as Google's Calendar quotas."""

    per_user_per_minute: int = 0
    per_project_per_minute: int = 0
    # How an exceeded limit is answered: "403" (usageLimits reasons) or "429".
    exceeded_status: int = 403
    window_seconds: float = 60.0


@dataclass(frozen=True, slots=True)
class EmulatorConfig:
    """Everything that shapes the emulator's behaviour."""

    clients: tuple[ClientConfig, ...] = (
        ClientConfig(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_REDIRECT_URIS),
    )
    # Approve consent at once as the account named by login_hint (created if new).
    auto_approve: bool = False
    # The address the emulator is reachable at, used in URLs it hands out (resourceUri, iss).
    public_url: str = "http://127.0.0.1:8765"

    # OAuth lifetimes (seconds). Google: codes ~10 min [I], access tokens 3599 s.
    code_ttl: float = 600.0
    access_token_ttl: int = 3599
    # Add `iss` to the success redirect, as newer Google responses do [I].
    redirect_includes_iss: bool = True
    # `prompt=none` when the account has not consented to every requested scope: the error
    # redirected to the client, "consent_required" or "interaction_required" [I, OIDC].
    prompt_none_error: str = "consent_required"
    # Authorization requests that name a valid client and redirect_uri but are otherwise
    # malformed (missing scope, bad prompt, bad PKCE method): Google shows `invalid_request`
    # on its own page [3P]; True redirects it to the client as RFC 6749 §4.1.2.1 does.
    redirect_invalid_request: bool = False
    # A replayed authorization code revokes the tokens first issued from it, as RFC 6749
    # §4.1.2 advises; whether Google does is not confirmed [I].
    code_replay_revokes_tokens: bool = True

    # Calendar behaviour that Google's documents leave unsure.
    # Status for a syncToken combined with a forbidden parameter [I: 400].
    sync_token_forbidden_param_status: int = 400
    # Inserting an id that a deleted (cancelled) event still holds answers 409 duplicate [I].
    duplicate_id_includes_cancelled: bool = True
    # Hard cap on instances produced by expanding one recurring event in one request [I].
    recurrence_max_instances: int = 2500
    # conferenceData.createRequest.status.statusCode right after insert: "success" or
    # "pending" (Google creates conferences asynchronously) [I].
    conference_create_status: str = "success"
    # events.instances of a non-recurring event: the event as its only instance (False), or
    # 400 (True) [I].
    instances_non_recurring_error: bool = False
    # freebusy.query clips busy periods to the requested [timeMin, timeMax) window [I].
    freebusy_clip_to_window: bool = True
    # `fields` naming a field the method's response schema lacks: Google answers 400
    # "Invalid field selection <name>" in some APIs and for some names, and leaves it out in
    # others [I]. False leaves unknown names out; True checks them against the discovery
    # document's schema (a valid field the response happens not to hold is never an error).
    fields_unknown_error: bool = False
    # Calendar usage-limit switch (quotaExceeded) applies to writes only, or to every call.
    quota_exceeded_writes_only: bool = True
    # Batch requests: Google's documented maximum of inner calls.
    batch_max_parts: int = 1000
    # Push notifications: timeout for one POST to a channel's address.
    push_timeout: float = 5.0
    # Google requires an https address with a valid certificate [D]; off for local receivers.
    push_require_https: bool = False
    # A receiver answering 500/502/503/504 (or not answering) is retried this many times,
    # after push_retry_delay seconds, doubling each time (Google: "exponential backoff" [I]).
    push_retries: int = 3
    push_retry_delay: float = 1.0
    # Send "not_exists" when an event is cancelled or deleted (google-api-facts §4.3). Real
    # Calendar channels watch the events *collection*, which may only ever report "exists" [I].
    push_not_exists_on_delete: bool = True
    # Channels without an expiration live this long (Google: about a week [I]).
    channel_default_ttl_ms: int = 7 * 24 * 3600 * 1000

    quotas: QuotaConfig = field(default_factory=QuotaConfig)

    @classmethod
    def from_file(cls, path: Path, **overrides: Any) -> EmulatorConfig:
        """Read a JSON config file.

        Shape: ``{"clients": [{"client_id", "client_secret", "redirect_uris"}], "quotas": {...}}``
        plus any other field of this class.
        """
        raw = json.loads(path.read_text())
        clients = tuple(
            ClientConfig(
                client_id=c["client_id"],
                client_secret=c["client_secret"],
                redirect_uris=tuple(c["redirect_uris"]),
                name=c.get("name", "Demo app"),
            )
            for c in raw.pop("clients", [])
        )
        quotas = QuotaConfig(**raw.pop("quotas", {}))
        values: dict[str, Any] = {**raw, "quotas": quotas, **overrides}
        if clients:
            values["clients"] = clients
        return cls(**values)
