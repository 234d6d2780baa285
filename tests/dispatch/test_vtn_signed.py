"""Signed mode: a real openleadr VTN and real VENs over HTTPS on loopback, with
certificates from a development CA made per test."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import signxml.signer
from cryptography.hazmat.primitives import serialization
from openleadr import OpenADRClient
from openleadr.messaging import create_message, validate_xml_schema, validate_xml_signature

from dispatch.certs import DevPki, dev_pki, fingerprint
from dispatch.signing import Signer, use_signer, ven_options
from dispatch.vtn import Vtn
from tests.conftest import free_port

DSIG = "{http://www.w3.org/2000/09/xmldsig#}"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    return dev_pki(tmp_path_factory.mktemp("pki"), ["ven-abc", "ven-other"])


async def _wait(condition: Callable[[], Any], seconds: float = 15.0) -> bool:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


def _vtn(pki: DevPki, enrolled: dict[str, str], *also: str) -> Vtn:
    """A signed VTN admitting the VENs of ``enrolled`` (VEN id -> fingerprint) and the
    VEN ids ``also``, which have no fingerprint stored."""
    return Vtn(
        lambda name: name if name in enrolled or name in also else None,
        port=free_port(),
        poll_interval_s=1,
        credentials=pki.vtn,
        fingerprint_lookup=enrolled.get,
    )


def _ven(pki: DevPki, vtn: Vtn, name: str, cert_of: str | None = None) -> OpenADRClient:
    """A signed VEN named ``name`` presenting the certificate of ``cert_of``."""
    credentials = pki.ven(cert_of or name)
    assert vtn.fingerprint is not None
    client = OpenADRClient(
        ven_name=name, vtn_url=vtn.url, **ven_options(credentials, vtn.fingerprint)
    )
    use_signer(client, Signer(credentials.cert_path, credentials.key_path))
    return client


def test_a_ven_with_the_enrolled_certificate_registers_gets_events_and_opts_in(
    pki: DevPki,
) -> None:
    async def scenario() -> None:
        vtn = _vtn(pki, {"ven-abc": pki.ven("ven-abc").fingerprint})
        assert vtn.url.startswith("https://")
        await vtn.start()
        ven = _ven(pki, vtn, "ven-abc")
        sent: list[str] = []
        ven.add_hook("before_send_xml", sent.append)
        received: list[dict[str, Any]] = []

        async def on_event(event: dict[str, Any]) -> str:
            received.append(event)
            return "optIn"

        ven.add_handler("on_event", on_event)
        try:
            await ven.run()
            assert ven.registration_id == "reg-ven-abc" and vtn.refused == []
            start = datetime.now(UTC) + timedelta(minutes=5)
            event_id = vtn.send_setpoints("ven-abc", start, timedelta(minutes=15), [-2.0])
            assert await _wait(lambda: vtn.responses)
            [response] = vtn.responses
            assert (response.ven_id, response.event_id, response.opt_type) == (
                "ven-abc",
                event_id,
                "optIn",
            )
            [signal] = received[0]["event_signals"]
            assert [i["signal_payload"] for i in signal["intervals"]] == [-2.0]
            # Every message the VEN sent carried its certificate in a signature.
            assert sent
            for message in sent:
                tree = validate_xml_schema(message)
                assert tree.find(f".//{DSIG}SignatureValue") is not None
        finally:
            await ven.stop()
            await vtn.stop()

    asyncio.run(scenario())


def test_a_ven_with_another_certificate_or_none_enrolled_is_refused(pki: DevPki) -> None:
    async def scenario() -> None:
        vtn = _vtn(pki, {"ven-abc": pki.ven("ven-abc").fingerprint}, "ven-new")
        await vtn.start()
        # A certificate from the same CA, but not the one enrolled for ven-abc.
        impostor = _ven(pki, vtn, "ven-abc", cert_of="ven-other")
        # Enrolled, but no certificate registered for it yet.
        unknown = _ven(pki, vtn, "ven-new", cert_of="ven-other")
        try:
            await impostor.run()
            await unknown.run()
            assert impostor.registration_id is None and unknown.registration_id is None
            assert vtn.refused == ["ven-abc", "ven-new"]
        finally:
            await impostor.stop()
            await unknown.stop()
            await vtn.stop()

    asyncio.run(scenario())


def test_a_ven_outside_the_ca_cannot_connect(pki: DevPki, tmp_path: Path) -> None:
    async def scenario() -> None:
        stranger_pki = dev_pki(tmp_path / "other-ca", ["ven-abc"])
        vtn = _vtn(pki, {"ven-abc": stranger_pki.ven("ven-abc").fingerprint})
        await vtn.start()
        stranger = _ven(stranger_pki, vtn, "ven-abc")
        try:
            await stranger.run()
            assert stranger.registration_id is None
            assert vtn.refused == []  # the TLS handshake failed before any message
        finally:
            await stranger.stop()
            await vtn.stop()

    asyncio.run(scenario())


def test_signed_mode_needs_a_fingerprint_lookup(pki: DevPki) -> None:
    with pytest.raises(ValueError, match="fingerprint_lookup"):
        Vtn(lambda name: name, credentials=pki.vtn)


def _count_key_loads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count PEM private-key parses wherever openleadr and signxml call them."""
    calls = [0]
    original = serialization.load_pem_private_key

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(serialization, "load_pem_private_key", counted)
    monkeypatch.setattr(signxml.signer, "load_pem_private_key", counted)
    return calls


def test_signer_parses_the_key_once_and_openleadr_accepts_its_messages(
    pki: DevPki, monkeypatch: pytest.MonkeyPatch
) -> None:
    credentials = pki.ven("ven-abc")
    calls = _count_key_loads(monkeypatch)
    signer = Signer(credentials.cert_path, credentials.key_path)
    assert calls == [1]
    messages = [signer.create_message("oadrPoll", ven_id="ven-abc") for _ in range(50)]
    assert calls == [1]
    for message in messages:
        validate_xml_signature(
            validate_xml_schema(message), cert_fingerprint=credentials.fingerprint
        )
    # A message altered after signing no longer validates.
    tampered = messages[0].replace("ven-abc", "ven-xyz")
    with pytest.raises(signxml.exceptions.InvalidSignature):
        validate_xml_signature(validate_xml_schema(tampered))
    # openleadr's own signing parses the key twice per message: what the signer avoids.
    cert, key = credentials.cert_path.read_bytes(), credentials.key_path.read_bytes()
    create_message("oadrPoll", cert=cert, key=key, ven_id="ven-abc")
    assert calls == [3]


def test_a_signed_exchange_parses_each_key_once(
    pki: DevPki, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _count_key_loads(monkeypatch)

    async def scenario() -> int:
        vtn = _vtn(pki, {"ven-abc": pki.ven("ven-abc").fingerprint})
        await vtn.start()
        ven = _ven(pki, vtn, "ven-abc")
        sent: list[str] = []
        ven.add_hook("before_send_xml", sent.append)
        ven.add_handler("on_event", lambda event: "optIn")
        try:
            await ven.run()
            start = datetime.now(UTC) + timedelta(minutes=5)
            for _ in range(3):
                vtn.send_setpoints("ven-abc", start, timedelta(minutes=15), [1.0])
            assert await _wait(lambda: len(vtn.responses) == 3 and len(sent) >= 10)
        finally:
            await ven.stop()
            await vtn.stop()
        return len(sent)

    sent = asyncio.run(scenario())
    assert sent >= 10
    assert calls == [2]  # the VTN's signer and the VEN's, each once


def test_fingerprint_matches_openleadr(pki: DevPki) -> None:
    from openleadr import utils

    pem = pki.ven("ven-abc").cert_path.read_bytes()
    assert fingerprint(pem) == utils.certificate_fingerprint(pem)
    with pytest.raises(ValueError, match="certificate"):
        fingerprint("not a certificate")


def test_a_key_openadr_does_not_sign_with_is_refused(pki: DevPki, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key_path = tmp_path / "ed25519.pem"
    key_path.write_bytes(
        ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(ValueError, match="key: Ed25519PrivateKey keys cannot sign"):
        Signer(pki.ven("ven-abc").cert_path, key_path)


def test_replay_protection_still_refuses_a_replayed_message_and_forgets_old_nonces(
    pki: DevPki, monkeypatch: pytest.MonkeyPatch
) -> None:
    from openleadr import messaging

    from dispatch import signing

    credentials = pki.ven("ven-abc")
    signer = Signer(credentials.cert_path, credentials.key_path)
    use_signer(OpenADRClient(ven_name="ven-abc", vtn_url="https://127.0.0.1:1"), signer)
    assert messaging._update_nonce_cache is signing.update_nonce_cache
    monkeypatch.setattr(messaging, "NONCE_CACHE", set())
    old = datetime.now(UTC) - timedelta(minutes=1)
    messaging.NONCE_CACHE.add((old, "old-nonce"))
    monkeypatch.setattr(signing, "_pruned_at", [0.0])  # a scan is due
    message = signer.create_message("oadrPoll", ven_id="ven-abc")
    validate_xml_signature(validate_xml_schema(message))
    assert len(messaging.NONCE_CACHE) == 1 and (old, "old-nonce") not in messaging.NONCE_CACHE
    with pytest.raises(ValueError, match="already used"):
        validate_xml_signature(validate_xml_schema(message))
    # Until the next scan is due, the old entry stays.
    monkeypatch.setattr(signing, "NONCE_PRUNE_S", 3600.0)
    messaging.NONCE_CACHE.add((old, "old-nonce"))
    validate_xml_signature(validate_xml_schema(signer.create_message("oadrPoll", ven_id="ven-abc")))
    assert (old, "old-nonce") in messaging.NONCE_CACHE and len(messaging.NONCE_CACHE) == 3


def test_signatures_check_in_several_threads_at_once(pki: DevPki) -> None:
    """A VTN and VENs in two threads of one process verify at the same time."""
    import sys
    import threading

    credentials = pki.ven("ven-abc")
    signer = Signer(credentials.cert_path, credentials.key_path)
    use_signer(OpenADRClient(ven_name="ven-abc", vtn_url="https://127.0.0.1:1"), signer)
    messages = [signer.create_message("oadrPoll", ven_id="ven-abc") for _ in range(600)]
    errors: list[Exception] = []

    def check(part: list[str]) -> None:
        for message in part:
            try:
                validate_xml_signature(validate_xml_schema(message))
            except Exception as exc:  # every failure is reported below
                errors.append(exc)

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often, as a loaded machine does
    try:
        threads = [threading.Thread(target=check, args=(messages[k::3],)) for k in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(switch)
    assert errors == []
