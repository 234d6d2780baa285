"""The service's route table, with the roles each route admits (read from its
dependencies: :func:`api.deps.allow` marks the roles it lets through)."""

from __future__ import annotations

import re
from typing import Any

from fastapi.routing import APIRoute, iter_route_contexts

from api.deps import get_principal
from registry.keys import Role

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


def routes(app: Any) -> list[tuple[str, str, APIRoute]]:
    """(method, path, route) of every API route, through included routers."""
    out: list[tuple[str, str, APIRoute]] = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and context.path is not None:
            out.extend((method, context.path, route) for method in sorted(route.methods or ()))
    return out


def concrete(path: str) -> str:
    """A path with each parameter filled (numbers fit both ``int`` and ``str``)."""
    return re.sub(r"\{[^}]+\}", "1", path)
