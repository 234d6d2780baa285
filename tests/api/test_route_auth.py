"""Every route of the service, walked from the route table: a missing key is refused
(401) and so is every role the route does not allow (403). A new route is checked the
day it is added; one open to every role must be named here."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.conftest import bearer
from tests.api.routes import ALL_ROLES, allowed_roles, concrete, routes

#: Routes that need no key (the dashboard page asks for one and sends it itself).
OPEN = {("GET", "/health"), ("GET", "/")}
#: Routes every role may call (each filters what an owner sees).
EVERY_ROLE = {
    ("GET", "/v1/devices"),
    ("GET", "/v1/devices/{device_id}"),
    ("GET", "/v1/devices/{device_id}/enrollments"),
    ("GET", "/v1/devices/{device_id}/telemetry"),
    ("GET", "/v1/devices/{device_id}/rewards"),
    ("GET", "/v1/programs"),
    ("GET", "/v1/programs/{program_id}"),
}


def test_every_route_refuses_a_missing_key_and_every_other_role(
    client: TestClient, keys: dict[str, str]
) -> None:
    table = routes(client.app)
    assert len(table) > 30  # the walk sees the whole service
    checked = 0
    for method, path, route in table:
        roles = allowed_roles(route)
        if (method, path) in OPEN:
            assert roles is None, f"{method} {path} is listed as open but asks for a key"
            continue
        assert roles is not None, f"{method} {path} asks for no key"
        answer = client.request(method, concrete(path))
        assert answer.status_code == 401, (method, path, answer.status_code, answer.text)
        if roles == ALL_ROLES:
            assert (method, path) in EVERY_ROLE, f"{method} {path} admits every role"
        for role in ALL_ROLES - roles:
            refused = client.request(method, concrete(path), headers=bearer(keys[role.value]))
            assert refused.status_code == 403, (method, path, role, refused.text)
            assert role.value in refused.json()["detail"]
            checked += 1
    assert checked > 50
