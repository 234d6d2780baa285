"""API keys: one role each, stored as the SHA-256 of the secret."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.errors import Conflict, InvalidInput, Problem
from registry.tables import ApiKey, utcnow


class Role(StrEnum):
    operator = "operator"  # grid operator: capacity requests, grid awareness
    aggregator = "aggregator"  # runs fleets: schedules, telemetry
    integrator = "integrator"  # device makers and program administrators: devices, enrolment
    analyst = "analyst"  # read-only
    owner = "owner"  # a device owner: sees own devices


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's name, role and, for owners, the owner name it may see."""

    key_id: int
    name: str
    role: Role
    subject: str | None


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(
    session: Session, name: str, role: Role, subject: str | None = None, now: datetime | None = None
) -> str:
    """Create a key and return its secret, which is not stored and cannot be shown again."""
    if role == Role.owner and not subject:
        raise InvalidInput([Problem("subject", "an owner key needs the owner_name it may see")])
    if session.scalar(select(ApiKey).where(ApiKey.name == name)) is not None:
        raise Conflict("name", "a key with this name exists", name)
    secret = f"ovpp_{role.value}_{secrets.token_urlsafe(32)}"
    session.add(
        ApiKey(
            name=name,
            role=role.value,
            subject=subject,
            key_hash=hash_key(secret),
            created_at=now or utcnow(),
        )
    )
    session.flush()
    return secret


def authenticate(session: Session, secret: str) -> Principal | None:
    """The principal behind a secret, or ``None`` when it is unknown or revoked."""
    key = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(secret)))
    if key is None or key.revoked_at is not None:
        return None
    return Principal(key.key_id, key.name, Role(key.role), key.subject)


def revoke_key(session: Session, name: str, now: datetime | None = None) -> bool:
    key = session.scalar(select(ApiKey).where(ApiKey.name == name))
    if key is None or key.revoked_at is not None:
        return False
    key.revoked_at = now or utcnow()
    return True


def ensure_dev_keys(session: Session, path: Path, owner_subject: str) -> dict[str, str]:
    """Write one development key per role to ``path``, reusing those still valid.

    Returns the ``{role: secret}`` mapping written.
    """
    existing: dict[str, str] = {}
    if path.exists():
        try:
            existing = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            existing = {}
    keys: dict[str, str] = {}
    for role in Role:
        secret = str(existing.get(role.value) or "")
        principal = authenticate(session, secret) if secret else None
        if principal is None or principal.role != role:
            name = f"dev-{role.value}"
            revoke_key(session, name)
            stale = session.scalar(select(ApiKey).where(ApiKey.name == name))
            if stale is not None:
                stale.name = f"{name}-revoked-{stale.key_id}"
                session.flush()
            secret = create_key(session, name, role, owner_subject if role == Role.owner else None)
        keys[role.value] = secret
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(keys, indent=2) + "\n")
    path.chmod(0o600)
    return keys
