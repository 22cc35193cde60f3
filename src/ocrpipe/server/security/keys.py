"""API keys: creation (the secret is shown once), salted scrypt hashes, verification, revocation.

A key looks like ``ocp_<id>_<secret>``: ``id`` (12 hex chars) is public and names the database row, so
verification hashes exactly one candidate; ``secret`` is 256 random bits. Only
``scrypt(secret, salt)`` is stored. A successful verification is remembered in memory as an HMAC of the
presented key (never the key itself) so repeated requests skip scrypt, but the row is read on every
request so a revocation takes effect immediately, also when it was made by another process.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, exists, or_, select, update
from sqlalchemy.exc import IntegrityError

from ocrpipe.server.storage.db import get_sessionmaker
from ocrpipe.server.storage.security_models import ApiKey

PREFIX = "ocp_"
_KEY_RE = re.compile(r"^ocp_([0-9a-f]{12})_([A-Za-z0-9_-]{20,128})$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32, "maxmem": 64 * 1024 * 1024}


class Scope(enum.StrEnum):
    """What a key may do: submit work, read its tenant's jobs, administer keys and retention."""

    SUBMIT = "submit"
    READ = "read"
    ADMIN = "admin"


class KeyAdminError(ValueError):
    """A key could not be created or revoked (bad name/scopes, duplicate name, unknown key)."""


class KeyExists(KeyAdminError):
    """A key with this name exists already (names are never reused, also after revocation)."""


def parse_scopes(text: str | Iterable[str]) -> frozenset[Scope]:
    """``"submit,read"`` → ``{Scope.SUBMIT, Scope.READ}``; unknown names raise :class:`KeyAdminError`."""
    items = text.split(",") if isinstance(text, str) else list(text)
    names = [s.strip().lower() for s in items if s.strip()]
    if not names:
        raise KeyAdminError("give at least one scope (submit, read, admin)")
    try:
        return frozenset(Scope(n) for n in names)
    except ValueError as exc:
        raise KeyAdminError(f"unknown scope in {','.join(names)!r}; use submit, read and/or admin") from exc


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: the key's id and name, its tenant and scopes."""

    key_id: str
    name: str
    tenant: str
    scopes: frozenset[Scope]
    rate_limit_per_min: float | None = None

    def has(self, scope: Scope) -> bool:
        return scope in self.scopes


@dataclass(frozen=True)
class KeyInfo:
    """A key as ``keys list`` shows it (no secret, no hash)."""

    id: str
    name: str
    tenant: str
    scopes: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None
    rate_limit_per_min: float | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name, "tenant": self.tenant, "scopes": list(self.scopes),
                "created_at": _iso(self.created_at), "revoked_at": _iso(self.revoked_at),
                "active": self.active, "rate_limit_per_min": self.rate_limit_per_min}


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    return value.isoformat().replace("+00:00", "Z")


def hash_secret(secret: str, salt: bytes) -> str:
    """The stored form of a key's secret: hex of scrypt(secret, salt)."""
    return hashlib.scrypt(secret.encode(), salt=salt, **_SCRYPT).hex()


def _info(row: ApiKey) -> KeyInfo:
    return KeyInfo(id=row.id, name=row.name, tenant=row.tenant, scopes=tuple(sorted(row.scopes.split(","))),
                   created_at=row.created_at, revoked_at=row.revoked_at,
                   rate_limit_per_min=row.rate_limit_per_min)


class KeyStore:
    """Create, list, revoke and verify API keys in the service database."""

    CACHE_SIZE = 4096

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions = get_sessionmaker(engine)
        self._pepper = secrets.token_bytes(32)  # keys the in-memory cache of verified keys
        self._verified: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self._dummy_salt = secrets.token_bytes(16)
        self._dummy = hash_secret(secrets.token_urlsafe(32), self._dummy_salt)

    def create(self, name: str, scopes: str | Iterable[str], tenant: str | None = None,
               rate_limit_per_min: float | None = None) -> tuple[KeyInfo, str]:
        """Store a new key; returns its info and the plaintext key (shown once, never stored)."""
        if not _NAME_RE.match(name):
            raise KeyAdminError("a key name is 1-64 characters: letters, digits, '.', '_' or '-'")
        tenant = tenant or name
        if not _NAME_RE.match(tenant):
            raise KeyAdminError("a tenant is 1-64 characters: letters, digits, '.', '_' or '-'")
        if rate_limit_per_min is not None and rate_limit_per_min <= 0:
            raise KeyAdminError("the rate limit must be a positive number of requests per minute")
        parsed = parse_scopes(scopes)
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        salt = secrets.token_bytes(16)
        row = ApiKey(id=key_id, name=name, tenant=tenant, scopes=",".join(sorted(s.value for s in parsed)),
                     salt=salt.hex(), hash=hash_secret(secret, salt), created_at=datetime.now(UTC),
                     rate_limit_per_min=rate_limit_per_min)
        try:
            with self.sessions.begin() as s:
                s.add(row)
        except IntegrityError as exc:
            raise KeyExists(f"a key named {name!r} already exists (also when revoked); pick another name") \
                from exc
        return _info(row), f"{PREFIX}{key_id}_{secret}"

    def list(self, include_revoked: bool = True) -> list[KeyInfo]:
        """All keys, oldest first."""
        q = select(ApiKey).order_by(ApiKey.created_at)
        if not include_revoked:
            q = q.where(ApiKey.revoked_at.is_(None))
        with self.sessions() as s:
            return [_info(r) for r in s.scalars(q)]

    def revoke(self, name_or_id: str) -> KeyInfo:
        """Revoke the key with this name or id (idempotent); unknown keys raise :class:`KeyAdminError`."""
        with self.sessions.begin() as s:
            row = s.scalars(select(ApiKey).where(or_(ApiKey.name == name_or_id, ApiKey.id == name_or_id))
                            ).first()
            if row is None:
                raise KeyAdminError(f"no key named {name_or_id!r}")
            if row.revoked_at is None:
                s.execute(update(ApiKey).where(ApiKey.id == row.id).values(revoked_at=datetime.now(UTC)))
                row.revoked_at = datetime.now(UTC)
        with self._lock:
            self._verified.pop(row.id, None)
        return _info(row)

    def any_keys(self) -> bool:
        """Whether a key was ever created (revoked ones count: revoking the last key must not open up)."""
        with self.sessions() as s:
            return bool(s.scalar(select(exists().where(ApiKey.id.is_not(None)))))

    def authenticate(self, presented: str) -> Principal | None:
        """The principal of a presented key, or None when it is malformed, unknown, wrong or revoked."""
        m = _KEY_RE.match(presented.strip())
        if m is None:
            return None
        key_id, secret = m.group(1), m.group(2)
        with self.sessions() as s:
            row = s.get(ApiKey, key_id)
        if row is None or row.revoked_at is not None:
            # The same scrypt as for a wrong secret: an unknown or revoked id must not answer faster, or key
            # ids could be enumerated by timing.
            hmac.compare_digest(hash_secret(secret, self._dummy_salt), self._dummy)
            return None
        tag = hmac.new(self._pepper, presented.strip().encode(), hashlib.sha256).digest()
        with self._lock:
            cached = self._verified.get(key_id)
        if cached is None or not hmac.compare_digest(cached, tag):
            computed = hash_secret(secret, bytes.fromhex(row.salt))
            if not hmac.compare_digest(computed, row.hash):
                return None
            self._remember(key_id, tag)
        return Principal(key_id=row.id, name=row.name, tenant=row.tenant,
                         scopes=parse_scopes(row.scopes), rate_limit_per_min=row.rate_limit_per_min)

    def recently_verified(self, presented: str) -> bool:
        """Whether this exact key was verified by this process before (no scrypt needed to check it)."""
        m = _KEY_RE.match(presented.strip())
        if m is None:
            return False
        tag = hmac.new(self._pepper, presented.strip().encode(), hashlib.sha256).digest()
        with self._lock:
            cached = self._verified.get(m.group(1))
        return cached is not None and hmac.compare_digest(cached, tag)

    def _remember(self, key_id: str, tag: bytes) -> None:
        with self._lock:
            self._verified[key_id] = tag
            self._verified.move_to_end(key_id)
            while len(self._verified) > self.CACHE_SIZE:
                self._verified.popitem(last=False)
