from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.errors import Conflict, InvalidInput
from registry.keys import Role, authenticate, create_key, ensure_dev_keys, hash_key, revoke_key
from registry.tables import ApiKey


def test_keys_are_stored_hashed_and_authenticate(session: Session) -> None:
    secret = create_key(session, "ops", Role.operator)
    stored = session.scalar(select(ApiKey).where(ApiKey.name == "ops"))
    assert (
        stored is not None and stored.key_hash == hash_key(secret) and secret not in stored.key_hash
    )
    principal = authenticate(session, secret)
    assert principal is not None and principal.role == Role.operator
    assert authenticate(session, secret + "x") is None
    assert revoke_key(session, "ops")
    assert authenticate(session, secret) is None


def test_owner_key_needs_subject_and_names_are_unique(session: Session) -> None:
    with pytest.raises(InvalidInput):
        create_key(session, "me", Role.owner)
    create_key(session, "me", Role.owner, "owner-a")
    with pytest.raises(Conflict):
        create_key(session, "me", Role.analyst)


def test_dev_keys_file_has_one_key_per_role_and_is_reused(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "var" / "dev-keys.json"
    first = ensure_dev_keys(session, path, "owner-0001")
    assert set(json.loads(path.read_text())) == {r.value for r in Role}
    assert path.stat().st_mode & 0o777 == 0o600
    assert ensure_dev_keys(session, path, "owner-0001") == first
    revoke_key(session, "dev-analyst")
    second = ensure_dev_keys(session, path, "owner-0001")
    assert second["analyst"] != first["analyst"] and second["operator"] == first["operator"]
    principal = authenticate(session, second["owner"])
    assert principal is not None and principal.subject == "owner-0001"
