"""The auth_web app's Prometheus metrics, in a registry of the app's own (no globals)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, generate_latest


class Metrics:
    """Counters of the linking flow's outcomes."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.consent_urls = Counter(
            "gcal_auth_consent_urls",
            "Consent URLs issued to calling services.",
            registry=self.registry,
        )
        self.callbacks = Counter(
            "gcal_auth_callbacks",
            "OAuth callbacks by outcome "
            "(linked, denied, bad_state, other_browser, scope_missing, failed).",
            ["outcome"],
            registry=self.registry,
        )

        self.webhooks = Counter(
            "gcal_auth_webhooks",
            "Google push requests by outcome (sync, exists, not_exists; or refused: "
            "malformed, unknown, forged, expired, replayed).",
            ["outcome"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
