"""Signed mode of the service's VTN: certificates registered on enrolments, checked at
every connection, and the settings that choose the mode."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openleadr import OpenADRClient
from pydantic import ValidationError
from sqlalchemy import Engine

from api.main import create_app
from api.settings import Settings
from dispatch.certs import DevPki, dev_pki
from dispatch.signing import Signer, use_signer, ven_options
from registry.db import session_factory
from registry.enrollment import ven_fingerprint
from tests.api.conftest import bearer
from tests.api.test_vtn_service import enrol
from tests.conftest import free_port
from tests.factories import program_fields


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    return dev_pki(tmp_path_factory.mktemp("pki"), ["ven-a", "ven-b"])


def signed_settings(pki: DevPki, tmp_path: Path, **change: Any) -> Settings:
    fields: dict[str, Any] = {
        "database_url": "sqlite://",
        "var_dir": tmp_path,
        "vtn_url": f"https://127.0.0.1:{free_port()}/OpenADR2/Simple/2.0b",
        "vtn_cert": pki.vtn.cert_path,
        "vtn_key": pki.vtn.key_path,
        "vtn_ca_file": pki.ca_path,
        "vtn_poll_interval_s": 1,
    }
    return Settings(**(fields | change))


def test_a_ven_connects_with_the_certificate_registered_on_its_enrolment(
    engine: Engine, keys: dict[str, str], tmp_path: Path, pki: DevPki
) -> None:
    settings = signed_settings(pki, tmp_path)
    integrator = bearer(keys["integrator"])
    with TestClient(create_app(settings, engine=engine)) as client:
        vtn = client.app.state.vtn  # type: ignore[attr-defined]
        assert vtn.signed and vtn.url == settings.vtn_url
        _, first = enrol(client, keys, "SN-SIGNED-1")
        _, second = enrol(client, keys, "SN-SIGNED-2")
        put = client.put(
            f"/v1/enrollments/{first['enrollment_id']}/certificate",
            json={"certificate_pem": pki.ven("ven-a").cert_path.read_text()},
            headers=integrator,
        )
        assert put.status_code == 200, put.text
        assert put.json() == {
            "enrollment_id": first["enrollment_id"],
            "ven_id": first["ven_id"],
            "fingerprint": pki.ven("ven-a").fingerprint,
        }

        async def register(ven_id: str, cert_of: str) -> str | None:
            credentials = pki.ven(cert_of)
            ven = OpenADRClient(
                ven_name=ven_id, vtn_url=vtn.url, **ven_options(credentials, vtn.fingerprint)
            )
            use_signer(ven, Signer(credentials.cert_path, credentials.key_path))
            await ven.run()
            await ven.stop()
            return ven.registration_id

        assert asyncio.run(register(first["ven_id"], "ven-a")) == f"reg-{first['ven_id']}"
        # Another device's certificate, and an enrolment without a certificate: refused.
        assert asyncio.run(register(first["ven_id"], "ven-b")) is None
        assert asyncio.run(register(second["ven_id"], "ven-b")) is None
        assert vtn.refused == [first["ven_id"], second["ven_id"]]
        # Once registered, the second connects too.
        client.put(
            f"/v1/enrollments/{second['enrollment_id']}/certificate",
            json={"fingerprint": pki.ven("ven-b").fingerprint.lower()},
            headers=integrator,
        ).raise_for_status()
        assert asyncio.run(register(second["ven_id"], "ven-b")) == f"reg-{second['ven_id']}"


def test_registering_a_certificate_checks_the_body_and_the_enrolment(
    engine: Engine, keys: dict[str, str], tmp_path: Path, pki: DevPki
) -> None:
    settings = signed_settings(pki, tmp_path, vtn_enabled=False)
    integrator = bearer(keys["integrator"])
    with TestClient(create_app(settings, engine=engine)) as client:
        device, enrolled = enrol(client, keys, "SN-CERT")
        url = f"/v1/enrollments/{enrolled['enrollment_id']}/certificate"

        def put(body: dict[str, Any], headers: dict[str, str] = integrator) -> Any:
            return client.put(url, json=body, headers=headers)

        def field_of(answer: Any) -> str:
            assert answer.status_code == 422, answer.text
            [problem] = answer.json()["detail"]
            return str(problem["loc"][-1])

        assert field_of(put({})) == "certificate_pem"
        both = {"certificate_pem": "x", "fingerprint": pki.ven("ven-a").fingerprint}
        assert field_of(put(both)) == "certificate_pem"
        assert field_of(put({"certificate_pem": "not a certificate"})) == "certificate_pem"
        assert field_of(put({"fingerprint": "AB:CD"})) == "fingerprint"
        assert field_of(put({"fingerprint": "zz" * 10})) == "fingerprint"
        outsider = dev_pki(tmp_path / "other-ca", ["ven-x"]).ven("ven-x")
        foreign = put({"certificate_pem": outsider.cert_path.read_text()})
        assert field_of(foreign) == "certificate_pem" and "VTN_CA_FILE" in foreign.text
        assert put({"fingerprint": "AB:CD"}, bearer(keys["analyst"])).status_code == 403
        missing = client.put(
            "/v1/enrollments/999999/certificate",
            json={"fingerprint": pki.ven("ven-a").fingerprint},
            headers=integrator,
        )
        assert missing.status_code == 404
        # The same device in a second program: one VEN, one certificate for both.
        client.post(
            "/v1/programs",
            json=program_fields("RES-DR-2"),
            headers=bearer(keys["operator"]),
        ).raise_for_status()
        again = client.post(
            "/v1/enrollments",
            json={"device_id": device, "program_id": "RES-DR-2"},
            headers=integrator,
        ).json()
        assert put({"fingerprint": pki.ven("ven-a").fingerprint}).status_code == 200
        with session_factory(engine)() as session:
            assert ven_fingerprint(session, enrolled["ven_id"]) == pki.ven("ven-a").fingerprint
        client.request(
            "DELETE", url.removesuffix("/certificate"), headers=integrator
        ).raise_for_status()
        with session_factory(engine)() as session:  # still open in the second program
            assert ven_fingerprint(session, again["ven_id"]) == pki.ven("ven-a").fingerprint
        assert put({"fingerprint": pki.ven("ven-a").fingerprint}).status_code == 404


def test_settings_refuse_half_a_signed_mode_and_plain_http_off_loopback(
    tmp_path: Path, pki: DevPki
) -> None:
    with pytest.raises(ValidationError, match="VTN_CA_FILE: signed mode needs"):
        signed_settings(pki, tmp_path, vtn_ca_file=None)
    with pytest.raises(ValidationError, match="VTN_KEY, VTN_CA_FILE: signed mode needs"):
        signed_settings(pki, tmp_path, vtn_key=None, vtn_ca_file=None)
    with pytest.raises(ValidationError, match="VTN_KEY: no file at"):
        signed_settings(pki, tmp_path, vtn_key=tmp_path / "missing.key")
    with pytest.raises(ValidationError, match="VTN_URL: signed mode serves https"):
        signed_settings(pki, tmp_path, vtn_url="http://127.0.0.1:8080/OpenADR2/Simple/2.0b")
    with pytest.raises(ValidationError, match="VTN_URL: plain HTTP is for development"):
        Settings(var_dir=tmp_path, vtn_url="http://10.0.0.5:8080/OpenADR2/Simple/2.0b")
    development = Settings(var_dir=tmp_path, vtn_url="http://localhost:8080/OpenADR2/Simple/2.0b")
    assert not development.vtn_signed
    assert signed_settings(pki, tmp_path).vtn_signed
