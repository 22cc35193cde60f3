"""Authentication and authorisation of HTTP requests: bearer API keys, scopes, tenants, rate limits.

Policy:
* While no API key was ever created (and ``auth`` is ``auto``) the API is open; ``ocrpipe serve`` only
  allows that on a loopback address (or with ``--insecure``). As soon as a key exists every ``/v1``
  request needs ``Authorization: Bearer <key>`` (401 without a valid, unrevoked key).
* The scope a request needs follows from its method and path: ``/v1/admin/*`` needs ``admin``; reads
  (GET/HEAD) need ``read``; submitting work and deleting a job need ``submit``. Missing scope: 403.
* Jobs belong to the tenant of the key that submitted them; other tenants get 404 as for a missing job.
* Each key has a token bucket (its own requests/minute, or the default): 429 ``rate_limited``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from ocrpipe.errors import ErrorCode
from ocrpipe.server.errors import ServiceError
from ocrpipe.server.security.keys import KeyStore, Principal, Scope
from ocrpipe.server.security.ratelimit import RateLimiter
from ocrpipe.server.security.settings import SecuritySettings

FAILED_AUTH_PER_MIN = 30.0


class AuthError(ServiceError):
    """401/403/429 from the security layer (a 401 answer carries ``WWW-Authenticate``)."""


class SecurityState:
    """Per-app security objects: settings, key store (bound to the service database), rate limiter."""

    RECHECK_S = 1.0

    def __init__(self, settings: SecuritySettings) -> None:
        self.settings = settings
        self.limiter = RateLimiter()
        self.failures = RateLimiter()  # failed authentications per peer address
        self._keys: KeyStore | None = None
        self._enforced = settings.auth == "required"
        self._checked: float | None = None
        """When the database last answered whether keys exist (None: never)."""
        self._lock = threading.Lock()
        self._check_lock = threading.Lock()

    def bind(self, engine: Any) -> KeyStore:
        """The key store on ``engine`` (created on first use)."""
        with self._lock:
            if self._keys is None or self._keys.engine is not engine:
                self._keys = KeyStore(engine)
            return self._keys

    def enforced_cached(self) -> bool | None:
        """The cached answer of :meth:`enforced`, or None when it is due to ask the database (again)."""
        if self._enforced:
            return True
        checked = self._checked
        return False if checked is not None and time.monotonic() - checked < self.RECHECK_S else None

    def enforced(self, keys: KeyStore) -> bool:
        """Whether keys are required now; once true it stays true for the life of the process.

        Fails closed under concurrency: callers that arrive while the database is being asked wait for
        its answer (a cold first query can take seconds); the cached "no keys" answer only counts from the
        moment the database gave it, never from the moment it was asked.
        """
        if self._enforced:
            return True
        with self._check_lock:
            if self.enforced_cached() is None:
                if keys.any_keys():
                    self._enforced = True
                self._checked = time.monotonic()
            return self._enforced


def security_state(app: FastAPI) -> SecurityState:
    state: SecurityState | None = getattr(app.state, "security", None)
    if state is None:
        state = app.state.security = SecurityState(SecuritySettings())
    return state


def key_store(app: FastAPI) -> KeyStore:
    """The key store of a running app (the service's database)."""
    return security_state(app).bind(app.state.svc.store.engine)


def required_scope(method: str, path: str) -> Scope | None:
    """The scope a request needs (None: no key needed, e.g. CORS pre-flight)."""
    if method == "OPTIONS":
        return None
    if path.startswith("/v1/admin") or path == "/metrics":
        return Scope.ADMIN
    if method in ("GET", "HEAD"):
        return Scope.READ
    return Scope.SUBMIT


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The key of ``Authorization: Bearer <key>`` (None when absent or another scheme)."""
    value = headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def check_request(app: FastAPI, method: str, path: str, headers: Mapping[str, str],
                        client: str | None = None) -> Principal | None:
    """Authenticate and authorise one request; None when auth is not enforced; raises AuthError.

    ``client`` (the peer address) limits failed attempts: after ``FAILED_AUTH_PER_MIN`` bad keys in a
    minute the peer gets 429 before a not yet verified key is checked (a deliberate ~30 ms scrypt); keys
    this process already verified keep working, so a guesser cannot lock out the clinic behind its NAT.
    """
    sec = security_state(app)
    keys = key_store(app)
    enforced = sec.enforced_cached()
    if enforced is None:
        enforced = await run_in_threadpool(sec.enforced, keys)
    if not enforced:
        return None
    token = bearer_token(headers)
    if token is None:
        raise AuthError(ErrorCode.UNAUTHORIZED, "this API needs an API key: send 'Authorization: Bearer <key>'")
    peer = f"peer:{client or '?'}"
    wait = 0.0 if keys.recently_verified(token) else sec.failures.peek(peer, FAILED_AUTH_PER_MIN)
    if wait > 0:
        raise AuthError(ErrorCode.RATE_LIMITED, "too many requests with invalid API keys from this address; "
                                           f"retry in {wait:.0f} s", retry_after=wait)
    principal = await run_in_threadpool(keys.authenticate, token)
    if principal is None:
        sec.failures.acquire(peer, FAILED_AUTH_PER_MIN)
        raise AuthError(ErrorCode.UNAUTHORIZED, "the API key is invalid or was revoked")
    limit = principal.rate_limit_per_min or sec.settings.rate_limit_per_min
    wait = sec.limiter.acquire(principal.key_id, limit)
    if wait > 0:
        raise AuthError(ErrorCode.RATE_LIMITED, f"key {principal.name!r} is limited to {limit:g} requests per "
                                           f"minute; retry in {wait:.1f} s", retry_after=wait)
    scope = required_scope(method, path)
    if scope is not None and not principal.has(scope):
        raise AuthError(ErrorCode.FORBIDDEN, f"key {principal.name!r} lacks the {scope.value!r} scope "
                                        f"needed for {method} {path}")
    return principal


def tenant_of(principal: Principal | None) -> str | None:
    """The tenant whose jobs the caller may see (None: no restriction, auth not enforced)."""
    return principal.tenant if principal is not None else None

