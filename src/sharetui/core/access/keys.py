"""Keys of the HTTP API (DESIGN §10): each acts as its user, under the same gate.

A key is a public ``accessKey`` and a ``secretKey`` shown once, when it is made.
Only a hash of the secret is kept: scrypt (the standard library's, a memory-hard
KDF) with a salt of its own per key, its parameters stored beside it so they can
be raised later. A call is checked in constant time (:func:`hmac.compare_digest`),
and an unknown ``accessKey`` costs the same scrypt as a known one with a wrong
secret, so a caller cannot tell which keys exist.

scrypt costs tens of milliseconds by design. So that a script making many calls
does not pay it on each one, a secret that was verified is remembered in memory
as its SHA-256 (never the secret; a 256-bit random secret cannot be recovered from
its SHA-256): the next call with the same key compares that digest, again in
constant time. Everything else is read from the database on every call: a key
revoked, or a user deactivated, stops working at the next request.

Who may do what: admins make, list and revoke anyone's keys; every other active
user their own (DESIGN §9: a key acts as its user, so it gives nothing the user
does not already have).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sharetui.db.models import ApiKey, User, check_lengths
from sharetui.domain.ids import as_id
from sharetui.domain.time import iso
from sharetui.errors import NotReadable, PermissionDenied, Refused, UsageError

if TYPE_CHECKING:
    from sharetui.core.service import Core

# scrypt parameters for new keys: N=2^14, r=8 (16 MiB of memory), p=1, as the
# standard library's documentation and OWASP's guidance give for interactive logins.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
_DKLEN = 32
_MAXMEM = 64 * 1024 * 1024
ACCESS_PREFIX = "ak_"
SECRET_PREFIX = "sk_"
# Longer inputs are never a key of ours: refused without reading them further.
_LONGEST = 200
# last_used_at is written at most once a minute per key: a busy script would
# otherwise turn every read into a write.
LAST_USED_PRECISION = timedelta(minutes=1)
_VERIFIED_CACHE_SIZE = 4096
# How many scrypt checks may run at once in one process. Every 401 costs a full scrypt
# (16 MiB, tens of milliseconds) by design; unbounded, a few clients sending bad keys
# would hold every worker thread and every core, and starve the calls of valid keys.
# Bounded, bad keys queue among themselves; a remembered key needs no KDF at all.
KDF_SLOTS = 2


def _scrypt(secret: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        secret.encode("utf-8", "surrogatepass"), salt=salt, n=n, r=r, p=p, dklen=_DKLEN, maxmem=_MAXMEM
    )


def hash_secret(secret: str) -> str:
    """``scrypt$N$r$p$salt$hash`` (hex) of ``secret`` with a fresh 16-byte salt."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(secret, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def verify_secret(secret: str, stored: str) -> bool:
    """Whether ``secret`` hashes to ``stored``; compared in constant time. A stored
    value that cannot be read verifies nothing (fail closed)."""
    try:
        algorithm, n, r, p, salt, digest = stored.split("$")
        if algorithm != "scrypt":
            return False
        computed = _scrypt(secret, bytes.fromhex(salt), int(n), int(r), int(p))
        return hmac.compare_digest(computed, bytes.fromhex(digest))
    except (ValueError, MemoryError):
        return False


@functools.cache
def _dummy_hash() -> str:
    """What an unknown accessKey is checked against: the same work as a real key. Made
    on first use, not at import: every command imports this module, few check keys."""
    return hash_secret(secrets.token_hex(32))


@dataclass(frozen=True)
class NewKey:
    """A key as it is made: the only time its secret is seen."""

    id: int
    user: str
    access_key: str
    secret_key: str
    label: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user": self.user,
            "access_key": self.access_key,
            "secret_key": self.secret_key,
            "label": self.label,
        }


@dataclass(frozen=True)
class KeyInfo:
    """A key as lists show it: never its secret, nor its hash."""

    id: int
    user: str
    access_key: str
    label: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def state(self) -> str:
        return "revoked" if self.revoked_at is not None else "active"

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user": self.user,
            "access_key": self.access_key,
            "label": self.label,
            "state": self.state,
            "created_at": iso(self.created_at),
            "last_used_at": iso(self.last_used_at),
            "revoked_at": iso(self.revoked_at),
        }


@dataclass(frozen=True)
class Caller:
    """Who a verified key vouches for: the key's id (for logs) and its user (the actor)."""

    key_id: int
    user: User


def _plausible(access_key: Any, secret_key: Any) -> bool:
    """Whether the pair could be a key of ours at all (text, not too long, no NUL)."""
    return (
        isinstance(access_key, str)
        and isinstance(secret_key, str)
        and len(access_key) <= _LONGEST
        and len(secret_key) <= _LONGEST
        and "\x00" not in access_key
    )


def _info(key: ApiKey, username: str) -> KeyInfo:
    return KeyInfo(
        key.id, username, key.access_key, key.label, key.created_at, key.last_used_at, key.revoked_at
    )


class KeyService:
    """Make, list, revoke and check keys of the HTTP API."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self._verified: OrderedDict[str, tuple[int, str, bytes]] = OrderedDict()
        self._lock = threading.Lock()
        self.kdf_slots = threading.BoundedSemaphore(KDF_SLOTS)

    def _verify(self, secret: str, stored: str) -> bool:
        """:func:`verify_secret` in one of :data:`KDF_SLOTS`: at most that many at once."""
        with self.kdf_slots:
            return verify_secret(secret, stored)

    # -- who may -------------------------------------------------------------------
    def _is_admin(self, actor: User | None) -> bool:
        from sharetui.core.access.gate import Capability

        return self.core.gate.allows(actor, Capability.MANAGE_USERS)

    def _require_active(self, actor: User | None) -> None:
        if actor is not None and not actor.active:
            raise PermissionDenied(f"user {actor.username} is deactivated")

    # -- make, list, revoke --------------------------------------------------------
    def create(self, user: User | str | None = None, *, actor: User | None, label: str = "") -> NewKey:
        """A new key for ``user`` (default: ``actor``). Admins make keys for anyone,
        others only for themselves. The secret is in the result and nowhere else."""
        self._require_active(actor)
        target = actor if user is None else self.core.users.get(user)
        if target is None:
            raise UsageError("name the user the key acts as: keys create --user NAME")
        if actor is not None and target.id != actor.id and not self._is_admin(actor):
            raise PermissionDenied(f"{actor.username} may make keys for themselves only")
        if not target.active:
            raise UsageError(f"user {target.username} is deactivated: a key would not work")
        label = label.strip()
        check_lengths(ApiKey, {"label": label})
        access_key = ACCESS_PREFIX + secrets.token_hex(16)
        secret_key = SECRET_PREFIX + secrets.token_hex(32)
        with self.core.db.atomic():
            key = ApiKey.create(
                user=target.id,
                access_key=access_key,
                secret_hash=hash_secret(secret_key),
                label=label,
                created_by_id=actor.id if actor else None,
                created_at=self.core.db_now(),
            )
        return NewKey(key.id, target.username, access_key, secret_key, label)

    def list(self, *, actor: User | None, user: User | str | None = None) -> list[KeyInfo]:
        """Keys ``actor`` may see, oldest first: admins every key (or ``user``'s),
        others their own."""
        self._require_active(actor)
        query = ApiKey.select(ApiKey, User.username).join(User, on=(ApiKey.user == User.id))
        if user is not None:
            target = self.core.users.get(user)
            if actor is not None and target.id != actor.id and not self._is_admin(actor):
                raise PermissionDenied(f"{actor.username} may list their own keys only")
            query = query.where(ApiKey.user == target.id)
        elif actor is not None and not self._is_admin(actor):
            query = query.where(ApiKey.user == actor.id)
        return [_info(key, key.user.username) for key in query.order_by(ApiKey.id)]

    def revoke(self, key_id: Any, *, actor: User | None) -> KeyInfo:
        """Revoke a key: it stops working at the next request. A key ``actor`` may not
        revoke answers like one that does not exist."""
        self._require_active(actor)
        ident = as_id(key_id) if not isinstance(key_id, int) else key_id
        if ident is None:
            raise UsageError(f"a key id is a whole number (keys list shows them), not {key_id!r}")
        with self.core.db.atomic():
            key = ApiKey.get_or_none(ApiKey.id == ident)
            if key is None or (actor is not None and key.user_id != actor.id and not self._is_admin(actor)):
                raise NotReadable(f"no key {ident} you may revoke")
            if key.revoked_at is not None:
                raise Refused(f"key {ident} is already revoked")
            key.revoked_at = self.core.db_now()
            key.revoked_by_id = actor.id if actor else None
            key.save()
        self._forget(key.access_key)
        return _info(key, User.get_by_id(key.user_id).username)

    def revoke_all_of(self, user_id: int, *, actor: User | None) -> int:
        """Revoke every active key of a user (their deactivation does, in its own
        transaction: reactivating them must not bring old keys back). Returns how many."""
        with self.core.db.atomic():
            keys = list(
                ApiKey.select(ApiKey.id, ApiKey.access_key).where(
                    (ApiKey.user == user_id) & ApiKey.revoked_at.is_null()
                )
            )
            if keys:
                ApiKey.update(revoked_at=self.core.db_now(), revoked_by_id=actor.id if actor else None).where(
                    ApiKey.id.in_([k.id for k in keys])
                ).execute()
        for key in keys:
            self._forget(key.access_key)
        return len(keys)

    # -- checking a call -----------------------------------------------------------
    def prepare(self) -> None:
        """Make the decoy hash now (a server calls this on start), so that the first call
        with an unknown key takes no longer than any other."""
        _dummy_hash()

    def authenticate(self, access_key: Any, secret_key: Any) -> Caller | None:
        """The caller a pair of keys vouches for, or None: an unknown or revoked key, a
        wrong secret and a deactivated user all answer None, alike."""
        if not _plausible(access_key, secret_key):
            self._verify("", _dummy_hash())
            return None
        key = ApiKey.get_or_none(ApiKey.access_key == access_key)
        if key is None:
            self._verify(secret_key, _dummy_hash())
            return None
        if not self._secret_matches(key, secret_key):
            return None
        return self._caller(key)

    def remembered(self, access_key: Any, secret_key: Any) -> Caller | None:
        """The caller, when this very pair was verified before (no KDF: its SHA-256 is
        compared in constant time); None means only :meth:`authenticate` can tell. A
        server answers remembered keys at once and sends the rest, which all cost a
        scrypt, to :meth:`authenticate` on threads of their own, so bad keys wait for
        one another and never for the calls of a script whose key is known good."""
        if not _plausible(access_key, secret_key):
            return None
        with self._lock:
            remembered = self._verified.get(access_key)
        if remembered is None:
            return None
        key = ApiKey.get_or_none(ApiKey.access_key == access_key)
        digest = hashlib.sha256(secret_key.encode("utf-8", "surrogatepass")).digest()
        if (
            key is None
            or remembered[:2] != (key.id, key.secret_hash)
            or not hmac.compare_digest(remembered[2], digest)
        ):
            return None
        return self._caller(key)

    def _caller(self, key: ApiKey) -> Caller | None:
        """A verified key's caller, or None when it was revoked or its user is inactive."""
        user = User.get_or_none(User.id == key.user_id)
        if key.revoked_at is not None or user is None or not user.active:
            return None
        self._touch(key)
        return Caller(key.id, user)

    def _secret_matches(self, key: ApiKey, secret_key: str) -> bool:
        digest = hashlib.sha256(secret_key.encode("utf-8", "surrogatepass")).digest()
        with self._lock:
            remembered = self._verified.get(key.access_key)
        # A wrong secret always pays the full scrypt, cached key or not: only the holder of
        # the right secret gets the fast answer, so timing tells no one which keys exist.
        if (
            remembered is not None
            and remembered[:2] == (key.id, key.secret_hash)
            and hmac.compare_digest(remembered[2], digest)
        ):
            return True
        if not self._verify(secret_key, key.secret_hash):
            return False
        with self._lock:
            self._verified[key.access_key] = (key.id, key.secret_hash, digest)
            self._verified.move_to_end(key.access_key)
            while len(self._verified) > _VERIFIED_CACHE_SIZE:
                self._verified.popitem(last=False)
        return True

    def _forget(self, access_key: str) -> None:
        with self._lock:
            self._verified.pop(access_key, None)

    def _touch(self, key: ApiKey) -> None:
        """Record the key's use, at most once per :data:`LAST_USED_PRECISION`."""
        now = self.core.db_now()
        last = key.last_used_at
        if last is not None and abs(now - last) < LAST_USED_PRECISION:
            return
        with self.core.db.atomic():
            ApiKey.update(last_used_at=now).where(ApiKey.id == key.id).execute()


__all__ = ["KDF_SLOTS", "Caller", "KeyInfo", "KeyService", "NewKey", "hash_secret", "verify_secret"]
