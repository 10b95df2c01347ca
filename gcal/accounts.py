"""The account lifecycle: linking a user's Google account, keeping its access token valid,
noticing revocation, and disconnecting; each step announced on the notifications stream.

    accounts = services.accounts
    tokens = await accounts.link_from_code(user_id, code, verifier)   # auth_web's callback
    token = await accounts.access_token(user_id)     # refreshed ahead of expiry when needed
    await accounts.disconnect(user_id)               # revoke at Google, forget

=============================  =============================================================
step                           announced
=============================  =============================================================
link, every scope granted      ``auth_linked`` (replacing another account revokes its grant)
link, a required scope missing ``auth_scope_missing`` (the partial grant is revoked)
refresh refused by Google      ``auth_revoked`` (tokens purged, re-consent needed)
stored tokens unreadable       ``auth_required``, reason ``tokens_unreadable`` (once)
disconnect                     ``auth_disconnected``
=============================  =============================================================

Inside a job, :meth:`Accounts.access_token` also checks the job's needs (the running needs of
:mod:`gcal.scopes`) against the scopes the user granted, as stored with the tokens: a grant
that cannot serve the job is :class:`ScopeMissing` naming the scope to ask for, and no
request leaves for Google. Tokens whose scopes are not known (Google sent none) are not
checked: Google's own 403 decides.

A refresh is single-flight across every process: the refresher holds a Redis lock on the
user; the others wait for it, then re-read the store and find the new token. ``invalid_grant``
on refresh means the user revoked access (or it lapsed). A transient token-endpoint failure
is a retryable :class:`UpstreamUnavailable`, never a revocation.

A new link takes no lock and waits for nothing: it replaces whatever is stored. Every other
write (a refresh's result, the purge after Google refused a refresh token, a disconnect) is
compare-and-set against the tokens it started from, so a refresh of the old grant never
overwrites a new link, and Google refusing the old grant never purges the new one: the
refresher drops what it got and uses what is stored now.

Other parts of the core follow the lifecycle through :class:`AccountListener` (the calendar
syncs, :mod:`gcal.sync_lifecycle`): told when a user is linked, when a disconnect is about to
revoke the grant (Google still answers), and when the user is gone.

Tokens that cannot be decrypted (keys rotated out of order) mean "link again": calls get
:class:`AuthRequired`, the user is marked and announced once, and the stored value is kept
(see :mod:`gcal.tokens`) until a new link replaces it.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable
from typing import Final, Protocol

from redis.asyncio import Redis
from redis.exceptions import LockError

from gcal.errors import (
    AuthRequired,
    AuthRevoked,
    GcalError,
    InternalError,
    ScopeMissing,
    UpstreamUnavailable,
)
from gcal.keys import RedisKeys
from gcal.notifications import (
    AuthDisconnected,
    AuthLinked,
    AuthScopeMissing,
    Notifier,
)
from gcal.notifications import AuthRequired as AuthRequiredNote
from gcal.notifications import AuthRevoked as AuthRevokedNote
from gcal.oauth import OAuthClient, TokenGrant
from gcal.scopes import lacking, missing, running_needs, unmet
from gcal.tokens import SealedTokens, StoredTokens, TokenStore, UnreadableTokens

log = logging.getLogger(__name__)

# How long a process uses an access token it read without reading the store again, s.
TOKEN_CACHE_SECONDS = 300.0
TOKEN_CACHE_SIZE = 50_000

_REVOKED = "auth_revoked"
_UNREADABLE: Final = "tokens_unreadable"
# Read-modify-write rounds before giving up: a round is repeated only when another writer
# (a new link, a refresh) changed the tokens in between, so a third one is already unlikely.
_ROUNDS = 3


def _same_account(tokens: StoredTokens, sub: str | None) -> bool:
    """Whether ``tokens`` are known to belong to the Google account ``sub``."""
    return tokens.sub is not None and tokens.sub == sub


def _check_needs(tokens: StoredTokens) -> None:
    """:class:`ScopeMissing` if the running job needs what the user's grant does not hold."""
    needs = running_needs()
    if needs and tokens.scopes:
        wanting = unmet(needs, tokens.scopes)
        if wanting:
            raise lacking(wanting, "not sent to Google")


class AccountListener(Protocol):
    """Told of each user's lifecycle; must not raise for a user it knows nothing of."""

    async def linked(self, user_id: str) -> None: ...

    async def leaving(self, user_id: str) -> None:
        """A disconnect is about to revoke the grant: last chance to call Google for them."""

    async def gone(self, user_id: str) -> None:
        """Disconnected, or Google revoked the grant."""


class Accounts:
    """Linked Google accounts, per user id."""

    def __init__(
        self,
        store: TokenStore,
        redis: Redis,
        keys: RedisKeys,
        oauth: OAuthClient,
        notifier: Notifier,
        *,
        required_scopes: Iterable[str],
        refresh_margin: float = 300.0,
        lock_timeout: float = 30.0,
    ) -> None:
        self.store = store
        self._redis = redis
        self._keys = keys
        self._oauth = oauth
        self._notifier = notifier
        self.required_scopes = tuple(required_scopes)
        self._margin = dt.timedelta(seconds=refresh_margin)
        self._lock_timeout = lock_timeout
        self.listeners: list[AccountListener] = []
        # user id -> (access token, monotonic time until which it is used without a read)
        self._cache: dict[str, tuple[str, float]] = {}

    # Linking ---------------------------------------------------------------------------------

    async def link_from_code(
        self, user_id: str, code: str, verifier: str, *, required: Iterable[str] | None = None
    ) -> StoredTokens:
        """Finish a consent: exchange the code (with its PKCE verifier), then :meth:`link`."""
        grant = await self._oauth.exchange_code(code, verifier)
        return await self.link(user_id, grant, required=required)

    async def link(
        self, user_id: str, grant: TokenGrant, *, required: Iterable[str] | None = None
    ) -> StoredTokens:
        """Keep the tokens of a completed consent, clear any re-consent mark, announce
        ``auth_linked``. Whatever was stored is replaced (tokens that cannot be decrypted
        included); if it was another Google account's (by OpenID ``sub``), its grant is then
        revoked at Google, best effort.

        A grant lacking a ``required`` scope (by default :attr:`required_scopes`; auth_web
        passes what its consent asked for) is given back to Google and announced as
        ``auth_scope_missing``; raises :class:`ScopeMissing`. A grant without a refresh
        token (consent was not forced) raises :class:`InternalError`.
        """
        lacked = missing(self.required_scopes if required is None else required, grant.scopes)
        if lacked:
            await self._give_back(user_id, grant)
            await self._notifier.publish(
                AuthScopeMissing(
                    user_id=user_id,
                    email=grant.email,
                    scopes=sorted(grant.scopes),
                    missing_scopes=lacked,
                )
            )
            raise ScopeMissing(
                "a required scope was not granted: " + " ".join(lacked),
                missing_scopes=tuple(lacked),
            )
        if grant.refresh_token is None:
            log.error("google granted no refresh token user=%s", user_id)
            raise InternalError("Google granted no refresh token; consent must be forced")
        email = grant.email
        if email is None:  # no email scope: keep the one known for this same account, if any
            previous = await self.store.read(user_id)  # unreadable ones are simply replaced
            if isinstance(previous, SealedTokens) and _same_account(previous.tokens, grant.sub):
                email = previous.tokens.email
        tokens = StoredTokens(
            access_token=grant.access_token.get_secret_value(),
            refresh_token=grant.refresh_token.get_secret_value(),
            expires_at=grant.expires_at,
            scopes=grant.scopes,
            email=email,
            sub=grant.sub,
            linked_at=dt.datetime.now(dt.UTC),
        )
        replaced = await self.store.put(user_id, tokens)
        self._cache.pop(user_id, None)
        await self._notifier.publish(
            AuthLinked(user_id=user_id, email=tokens.email, scopes=sorted(tokens.scopes))
        )
        log.info("account linked user=%s", user_id)
        if replaced is not None:
            await self._retire(user_id, replaced, tokens)
        for listener in self.listeners:
            await listener.linked(user_id)
        return tokens

    async def _retire(self, user_id: str, replaced: bytes, tokens: StoredTokens) -> None:
        """Revoke, best effort, the grant a new link replaced if it is another Google
        account's. Never the same account's: Google keeps one grant per client and account,
        so revoking the old tokens would revoke the new ones with them."""
        previous = self.store.open(user_id, replaced)
        if not isinstance(previous, SealedTokens):
            log.warning("re-linked over unreadable tokens; their grant stays user=%s", user_id)
            return
        if previous.tokens.sub is None or tokens.sub is None:
            # Linked before the account id was kept: whose grant it is cannot be told.
            log.info("re-linked; the previous account is unknown, its grant stays user=%s", user_id)
            return
        if _same_account(previous.tokens, tokens.sub):
            return
        try:
            await self._oauth.revoke(previous.tokens.refresh_token)
        except GcalError as err:
            log.warning("could not revoke the replaced grant user=%s (%s)", user_id, err.code)
            return
        log.info("re-linked to another account; the previous grant was revoked user=%s", user_id)

    async def _give_back(self, user_id: str, grant: TokenGrant) -> None:
        try:
            await self._oauth.revoke(grant.access_token.get_secret_value())
        except GcalError:
            log.warning("could not revoke a partial grant user=%s", user_id)

    async def reconsent_reason(self, user_id: str) -> str | None:
        """Why the user must link again (``auth_revoked``, ``tokens_unreadable``), or None."""
        return await self.store.reconsent_reason(user_id)

    # Access tokens ---------------------------------------------------------------------------

    async def access_token(self, user_id: str, *, rejected: str | None = None) -> str:
        """A valid access token for ``user_id``.

        Refreshes when the stored one expires within the margin, or when it is ``rejected``
        (Google answered 401 to it). Raises :class:`AuthRequired` when the user has no linked
        account or its tokens cannot be decrypted, :class:`AuthRevoked` when Google refuses
        the refresh token, :class:`ScopeMissing` when the running job needs a scope the grant
        lacks.
        """
        if rejected is None:
            cached = self._cache.get(user_id)
            if cached is not None and cached[1] > time.monotonic():
                return cached[0]
        else:
            self._cache.pop(user_id, None)
        current = await self._require(user_id)
        _check_needs(current.tokens)
        if self._usable(current.tokens, rejected):
            return self._remember(user_id, current.tokens)
        lock = self._redis.lock(
            self._keys.refresh_lock(user_id),
            timeout=self._lock_timeout,
            blocking_timeout=self._lock_timeout,
            sleep=0.05,
        )
        try:
            async with lock:
                for _ in range(_ROUNDS):
                    # Another process may have refreshed while we waited for the lock, or the
                    # user linked again while we refreshed: what is stored now decides.
                    current = await self._require(user_id)
                    if self._usable(current.tokens, rejected):
                        return self._remember(user_id, current.tokens)
                    fresh = await self._refresh(user_id, current)
                    if fresh is not None:
                        return self._remember(user_id, fresh)
        except LockError as err:
            raise UpstreamUnavailable("timed out waiting for another token refresh") from err
        raise UpstreamUnavailable("the user's tokens kept changing during a token refresh")

    def _remember(self, user_id: str, tokens: StoredTokens) -> str:
        """Keep ``tokens``' access token in this process until shortly before it must be
        refreshed (at most ``TOKEN_CACHE_SECONDS``): most jobs then need no Redis read and no
        decryption. A change made elsewhere (a re-link, a revocation) shows when Google
        refuses the cached token: the 401 makes the next call read the store."""
        if len(self._cache) >= TOKEN_CACHE_SIZE:
            self._cache.clear()
        usable = (tokens.expires_at - self._margin - dt.datetime.now(dt.UTC)).total_seconds()
        until = time.monotonic() + min(usable, TOKEN_CACHE_SECONDS)
        self._cache[user_id] = (tokens.access_token, until)
        return tokens.access_token

    async def _require(self, user_id: str) -> SealedTokens:
        current = await self.store.read(user_id)
        if isinstance(current, UnreadableTokens):
            await self._unreadable(user_id, current)
            raise AuthRequired(
                "the stored Google tokens cannot be decrypted with this service's keys; "
                "the user must link their account again"
            )
        if current is None:
            if await self.reconsent_reason(user_id) == _REVOKED:
                raise AuthRevoked("the user revoked access; they must link their account again")
            raise AuthRequired("no Google account is linked for this user")
        return current

    async def _unreadable(self, user_id: str, current: UnreadableTokens) -> None:
        """Mark the user for re-consent and announce it, the first time only. The value is
        kept: restoring a missing key brings the user back without a new link."""
        if await self.store.set_aside(user_id, current.blob, _UNREADABLE, purge=False):
            log.error("stored tokens open with none of the configured keys user=%s", user_id)
            await self._notifier.publish(AuthRequiredNote(user_id=user_id, reason=_UNREADABLE))

    def _usable(self, tokens: StoredTokens, rejected: str | None) -> bool:
        if rejected is not None and tokens.access_token == rejected:
            return False
        return tokens.expires_at - self._margin > dt.datetime.now(dt.UTC)

    async def _refresh(self, user_id: str, current: SealedTokens) -> StoredTokens | None:
        """Refresh ``current``'s access token and store the result, compare-and-set against
        ``current``: None (and nothing written or purged) if the tokens changed meanwhile,
        i.e. the user linked again or disconnected while Google answered."""
        tokens = current.tokens
        try:
            grant = await self._oauth.refresh(tokens.refresh_token)
        except AuthRevoked:
            if await self._revoked(user_id, current):
                raise
            return None
        fresh = tokens.model_copy(
            update={
                "access_token": grant.access_token.get_secret_value(),
                "expires_at": grant.expires_at,
                # Google does not rotate refresh tokens; keep ours unless it sends a new one.
                "refresh_token": (
                    grant.refresh_token.get_secret_value()
                    if grant.refresh_token
                    else tokens.refresh_token
                ),
                "scopes": grant.scopes or tokens.scopes,
                "email": grant.email or tokens.email,
            }
        )
        if not await self.store.replace(user_id, current.blob, fresh):
            log.info("refreshed tokens discarded: they changed meanwhile user=%s", user_id)
            return None
        log.info("refreshed access token user=%s", user_id)
        return fresh

    async def _revoked(self, user_id: str, current: SealedTokens) -> bool:
        """Purge the tokens Google refused, mark the user for re-consent, announce it; only
        if they are still the stored ones (False: a new link replaced them meanwhile)."""
        self._cache.pop(user_id, None)
        if not await self.store.set_aside(user_id, current.blob, _REVOKED, purge=True):
            log.info("refresh token refused, but the tokens changed meanwhile user=%s", user_id)
            return False
        log.warning("grant revoked at Google user=%s", user_id)
        await self._notifier.publish(AuthRevokedNote(user_id=user_id, email=current.tokens.email))
        for listener in self.listeners:
            await listener.gone(user_id)
        return True

    # Disconnecting ---------------------------------------------------------------------------

    async def disconnect(self, user_id: str) -> bool:
        """Revoke the user's grant at Google, then forget everything kept for the user.

        Idempotent: a user with nothing stored is simply reported as not linked (False).
        A transient failure to reach Google raises :class:`UpstreamUnavailable` and keeps
        the tokens, so a retry can still revoke them. Tokens that cannot be decrypted cannot
        be revoked; they are forgotten all the same. The delete is compare-and-set against
        what was revoked: tokens that a new link stored meanwhile are revoked and forgotten in
        turn, so nothing stays stored that Google no longer honours, and no grant still alive
        at Google is forgotten.
        """
        self._cache.pop(user_id, None)
        for _ in range(_ROUNDS):
            current = await self.store.read(user_id)
            if current is None:
                await self.store.forget(user_id, None)  # a re-consent mark, if any
                return False
            email = None
            if isinstance(current, SealedTokens):
                for listener in self.listeners:
                    await listener.leaving(user_id)
                # Revoking the refresh token revokes the whole grant, access tokens included.
                await self._oauth.revoke(current.tokens.refresh_token)
                email = current.tokens.email
            else:
                log.warning("disconnect: unreadable tokens cannot be revoked user=%s", user_id)
            if await self.store.forget(user_id, current.blob):
                log.info("disconnected user=%s", user_id)
                await self._notifier.publish(AuthDisconnected(user_id=user_id, email=email))
                for listener in self.listeners:
                    await listener.gone(user_id)
                return True
        raise UpstreamUnavailable("the user's tokens kept changing during disconnect")
