"""Dashboard access: users with PBKDF2 password hashes, a signed session cookie, roles.

- A password hash is ``pbkdf2_sha256$<iterations>$<salt b64>$<hash b64>`` (``hash_password``;
  ``gridpulse dashboard hash-password`` prints one), compared in constant time.
- A session is ``<user b64>.<expiry epoch s>.<HMAC-SHA256 b64>`` over the first two parts with
  the dashboard secret; nothing else is trusted from the browser: the role and manager come
  from the configured users at every request, so a removed user's cookie stops working.
- Roles: ``viewer`` reads everything, acknowledges nothing; ``manager`` reads everything, sees
  and acknowledges only the alerts naming its ``manager_id``; ``supervisor`` sees and
  acknowledges every alert.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

ROLES = ("viewer", "manager", "supervisor")
Role = Literal["viewer", "manager", "supervisor"]
SCHEME = "pbkdf2_sha256"
ITERATIONS = 260_000  # OWASP's PBKDF2-HMAC-SHA256 advice is >= 600k; the design's floor is 200k
MIN_ITERATIONS = 200_000
COOKIE = "gp_session"


class UsersError(ValueError):
    """The configured users are not usable (the process refuses to start)."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, *, iterations: int = ITERATIONS, salt: bytes | None = None) -> str:
    if iterations < MIN_ITERATIONS:
        raise ValueError(f"at least {MIN_ITERATIONS} iterations")
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"{SCHEME}${iterations}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    try:
        scheme, iterations, salt, digest = encoded.split("$")
        rounds = int(iterations)
        if scheme != SCHEME or rounds < MIN_ITERATIONS:
            return False
        expected = _unb64(digest)
        got = hashlib.pbkdf2_hmac("sha256", password.encode(), _unb64(salt), rounds)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


@dataclass(frozen=True)
class User:
    user: str
    role: Role
    manager_id: str | None
    password_hash: str

    def public(self) -> dict[str, Any]:
        return {"user": self.user, "role": self.role, "manager_id": self.manager_id}

    @property
    def ack_name(self) -> str:
        """Who an acknowledgement is recorded as: the manager id, or a supervisor's user name."""
        return self.manager_id if self.role == "manager" and self.manager_id else self.user


def parse_users(entries: Iterable[Mapping[str, Any]]) -> dict[str, User]:
    users: dict[str, User] = {}
    for n, entry in enumerate(entries):
        name = entry.get("user")
        role = entry.get("role")
        password_hash = entry.get("password_hash")
        manager_id = entry.get("manager_id")
        if not isinstance(name, str) or not name:
            raise UsersError(f"dashboard user #{n}: no user name")
        if role not in ROLES:
            raise UsersError(f"dashboard user {name!r}: role must be one of {', '.join(ROLES)}")
        if not isinstance(password_hash, str) or not password_hash.startswith(SCHEME + "$"):
            raise UsersError(f"dashboard user {name!r}: password_hash must be {SCHEME}$... (hash-password)")
        if role == "manager" and not manager_id:
            raise UsersError(f"dashboard user {name!r}: a manager needs a manager_id")
        if name in users:
            raise UsersError(f"dashboard user {name!r} is configured twice")
        users[name] = User(name, role, str(manager_id) if manager_id else None, password_hash)
    return users


def load_users(inline: Sequence[Mapping[str, Any]] | None, path: str | None) -> dict[str, User]:
    """The users of ``dashboard_users`` (a list) and ``dashboard_users_file`` (the same JSON)."""
    entries: list[Mapping[str, Any]] = list(inline or [])
    if path:
        try:
            loaded = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UsersError(f"dashboard users file {path}: {exc}") from exc
        if not isinstance(loaded, list):
            raise UsersError(f"dashboard users file {path}: a JSON list of users expected")
        entries.extend(loaded)
    return parse_users(entries)


# a hash to spend the same time on for an unknown user as for a wrong password
_DUMMY_HASH = hash_password("not a password", salt=b"gridpulse-dummy!")


def authenticate(users: Mapping[str, User], name: str, password: str) -> User | None:
    user = users.get(name)
    ok = verify_password(password, user.password_hash if user else _DUMMY_HASH)
    return user if ok and user is not None else None


class SessionSigner:
    """Signs and checks session tokens (user + expiry) with HMAC-SHA256."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the session secret needs at least 16 bytes")
        self._key = secret

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())

    def sign(self, user: str, expires_at: float) -> str:
        payload = f"{_b64(user.encode())}.{int(expires_at)}"
        return f"{payload}.{self._mac(payload)}"

    def verify(self, token: str, now: float) -> str | None:
        """The user of a valid, unexpired token; None otherwise."""
        try:
            user_b64, expiry, mac = token.split(".")
            payload = f"{user_b64}.{expiry}"
            if not hmac.compare_digest(mac, self._mac(payload)):
                return None
            if int(expiry) <= now:
                return None
            return _unb64(user_b64).decode()
        except (ValueError, UnicodeDecodeError):
            return None


# --- roles ---------------------------------------------------------------------------------


def sees_alert(user: User, manager_ids: Sequence[str]) -> bool:
    if user.role == "manager":
        return user.manager_id in manager_ids
    return True


def may_acknowledge(user: User, manager_ids: Sequence[str]) -> bool:
    if user.role == "supervisor":
        return True
    if user.role == "manager":
        return user.manager_id in manager_ids
    return False


def visible_alerts(user: User, rows: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [r for r in rows if sees_alert(user, list(r.get("manager_ids") or []))]
