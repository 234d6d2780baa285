"""Dependencies of the routes, as ``Annotated`` aliases."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from api.chain import shared_chain
from api.settings import Settings
from contracts.chain import Chain
from registry.keys import Principal, Role, authenticate


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_session(request: Request) -> Iterator[Session]:
    """A session per request. Routes commit what they write; anything else rolls back."""
    with request.app.state.session_factory() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]

_bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer <key>`")


def get_principal(
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing API key: send the header 'Authorization: Bearer <key>'",
            headers=challenge,
        )
    principal = authenticate(session, credentials.credentials)
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "unknown or revoked API key", headers=challenge
        )
    return principal


def allow(*roles: Role) -> Callable[[Principal], Principal]:
    """A dependency that lets only ``roles`` through (403 otherwise)."""
    allowed = ", ".join(r.value for r in roles)

    def check(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if principal.role not in roles:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"role '{principal.role.value}' may not do this; allowed roles: {allowed}",
            )
        return principal

    check.roles = frozenset(roles)  # type: ignore[attr-defined]  # read by the route audit
    return check


AnyRole = Annotated[Principal, Depends(get_principal)]
Integrator = Annotated[Principal, Depends(allow(Role.integrator))]
ProgramAdmin = Annotated[Principal, Depends(allow(Role.operator, Role.integrator))]
TelemetrySender = Annotated[Principal, Depends(allow(Role.integrator, Role.aggregator))]
GridViewer = Annotated[
    Principal, Depends(allow(Role.operator, Role.aggregator, Role.integrator, Role.analyst))
]
Aggregator = Annotated[Principal, Depends(allow(Role.aggregator))]
JobAdmin = Annotated[Principal, Depends(allow(Role.operator, Role.aggregator, Role.analyst))]
Operator = Annotated[Principal, Depends(allow(Role.operator))]
ForecastUser = Annotated[Principal, Depends(allow(Role.analyst, Role.aggregator))]


def get_chain(request: Request) -> Chain:
    """The contracts on the service's chain (see :func:`api.chain.shared_chain`)."""
    return shared_chain(request.app.state)


ChainDep = Annotated[Chain, Depends(get_chain)]
Dispatcher = Annotated[Principal, Depends(allow(Role.operator, Role.aggregator))]
