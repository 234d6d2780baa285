"""Every route of the service, walked from the route table: a missing key is refused
(401) and so is every role the route does not allow (403). A new route is checked the
day it is added; one open to every role must be named here."""

from __future__ import annotations

import re
from typing import Any

from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient

from api.deps import get_principal
from registry.keys import Role
from tests.api.conftest import bearer

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
ALL_ROLES = frozenset(Role)


def allowed_roles(route: APIRoute) -> frozenset[Role] | None:
    """The roles a route admits (``None``: it asks for no key)."""
    found: frozenset[Role] | None = None
    stack = list(route.dependant.dependencies)
    while stack:
        dependency = stack.pop()
        roles = getattr(dependency.call, "roles", None)
        if roles is not None:
            return frozenset(roles)
        if dependency.call is get_principal:
            found = ALL_ROLES
        stack.extend(dependency.dependencies)
    return found


def routes(client: TestClient) -> list[tuple[str, str, APIRoute]]:
    """(method, path, route) of every API route, through included routers."""
    app: Any = client.app
    out: list[tuple[str, str, APIRoute]] = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and context.path is not None:
            out.extend((method, context.path, route) for method in sorted(route.methods or ()))
    return out


def concrete(path: str) -> str:
    """A path with each parameter filled (numbers fit both ``int`` and ``str``)."""
    return re.sub(r"\{[^}]+\}", "1", path)


def test_every_route_refuses_a_missing_key_and_every_other_role(
    client: TestClient, keys: dict[str, str]
) -> None:
    table = routes(client)
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
