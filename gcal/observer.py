"""What the core tells an observer about its work with Google, for metrics, without knowing
who listens.

The composition root (:mod:`gcal.services`) hands one :class:`GoogleObserver` to the Calendar
and OAuth clients; the worker plugs its Prometheus metrics in (``worker.metrics``), anything
else gets :data:`NO_OBSERVER`. Calls are synchronous and cheap: an observer only counts.

===================================  ============================================================
hook                                 called
===================================  ============================================================
``request(method, status, seconds)`` after every HTTP exchange with Google (each attempt):
                                     ``method`` is Google's method name (``events.list``,
                                     ``oauth.refresh``...), ``status`` the HTTP status or
                                     ``"error"`` when no answer came (timeout, connection)
``refresh(result)``                  after each access-token refresh: ``ok``, ``revoked``
                                     (Google refused the refresh token) or ``failed``
``revocation(origin)``               when a grant ends: ``google`` (a refresh token refused:
                                     the user revoked access, or it lapsed) or ``service`` (we
                                     revoked it: a disconnect, a partial grant given back)
===================================  ============================================================

Label values are a small fixed set: never a user id, calendar id or URL.
"""

from __future__ import annotations

from typing import Literal, Protocol

RefreshResult = Literal["ok", "revoked", "failed"]
RevocationOrigin = Literal["google", "service"]


class GoogleObserver(Protocol):
    """Receives what the Google clients do (see the module docstring)."""

    def request(self, method: str, status: str, seconds: float) -> None: ...

    def refresh(self, result: RefreshResult) -> None: ...

    def revocation(self, origin: RevocationOrigin) -> None: ...


class _NoObserver:
    """Observes nothing."""

    def request(self, method: str, status: str, seconds: float) -> None:
        pass

    def refresh(self, result: RefreshResult) -> None:
        pass

    def revocation(self, origin: RevocationOrigin) -> None:
        pass


NO_OBSERVER: GoogleObserver = _NoObserver()
