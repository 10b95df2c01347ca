"""The auth_web app's Prometheus metrics, in a registry of the app's own (no globals).

=============================================  =========  ======================================
metric                                         type       labels
=============================================  =========  ======================================
``gcal_auth_consent_urls_total``               counter    consent URLs issued
``gcal_auth_callbacks_total``                  counter    ``outcome`` of Google's callbacks
``gcal_auth_http_requests_total``              counter    ``route`` (the route's name, or
                                                          ``unmatched``), ``method``, ``status``
``gcal_auth_http_request_duration_seconds``    histogram  ``route``
=============================================  =========  ======================================
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

# Seconds: from a probe answered at once to a callback waiting on Google's token endpoint.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """Counters of the linking flow's outcomes, and of every request served."""

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
        self.requests = Counter(
            "gcal_auth_http_requests",
            "HTTP requests answered, by route name (unmatched: no route), method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.request_duration = Histogram(
            "gcal_auth_http_request_duration_seconds",
            "Time to answer an HTTP request, by route name.",
            ["route"],
            buckets=REQUEST_BUCKETS,
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
