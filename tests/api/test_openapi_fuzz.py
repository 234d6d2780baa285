"""Schemathesis over the whole OpenAPI spec, each operation called with a key of a role
it admits, on a demo fleet: no input, however odd, gets a server error."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Ok
from sqlalchemy import Engine

from api.main import create_app
from api.settings import Settings
from registry.keys import Role
from tests.api.conftest import bearer
from tests.api.routes import allowed_roles, routes
from tests.conftest import free_port

#: Roles tried first when a route admits several (the most capable).
PREFERENCE = (Role.operator, Role.aggregator, Role.integrator, Role.analyst, Role.owner)
EXAMPLES = 40


def send(client: TestClient, request: dict[str, Any]) -> Any:
    """A request as schemathesis describes it (``requests`` arguments), through httpx."""
    kwargs = {k: request[k] for k in ("method", "url", "headers", "params")}
    if request.get("json") is not None:
        kwargs["json"] = request["json"]
    data = request.get("data")
    if isinstance(data, bytes | str):
        kwargs["content"] = data
    elif data is not None:
        kwargs["data"] = data
    if request.get("files"):
        kwargs["files"] = request["files"]
    return client.request(**kwargs)


def fuzz(
    client: TestClient, operation: Any, headers: dict[str, str], statuses: Counter[int]
) -> None:
    """Call one operation with generated inputs; fail on the first server error."""

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,  # the same inputs every run: a red run is reproducible
        suppress_health_check=list(HealthCheck),
    )
    def call(case: Any) -> None:
        response = send(client, case.as_transport_kwargs("http://testserver", headers))
        statuses[response.status_code] += 1
        assert response.status_code < 500, (case.method, case.path, response.text[:500])

    call()


@pytest.fixture
def service(engine: Engine, tmp_path: Path) -> Iterator[TestClient]:
    """The whole service: its VTN on a free port, the embedded chain."""
    url = f"http://127.0.0.1:{free_port()}/OpenADR2/Simple/2.0b"
    settings = Settings(var_dir=tmp_path, vtn_url=url)
    with TestClient(create_app(settings, engine=engine)) as client:
        yield client


@pytest.mark.usefixtures("demo_fleet")
def test_no_operation_answers_with_a_server_error(
    service: TestClient, keys: dict[str, str]
) -> None:
    client = service
    # From the app's own spec; calls go through the running app (its VTN, jobs, chain).
    app: Any = client.app
    schema = schemathesis.openapi.from_dict(app.openapi())
    table = {(method, path): route for method, path, route in routes(client.app)}
    statuses: Counter[int] = Counter()
    operations = 0
    for found in schema.get_all_operations():
        assert isinstance(found, Ok), found
        operation = found.ok()
        roles = allowed_roles(table[(operation.method.upper(), operation.path)])
        role = next((r for r in PREFERENCE if r in roles), None) if roles else None
        headers = bearer(keys[role.value]) if role else {}

        fuzz(client, operation, headers, statuses)
        operations += 1
    assert operations == len(table)
    assert sum(statuses.values()) >= operations
    print(f"{operations} operations, {sum(statuses.values())} calls: {dict(statuses)}")
