"""OpenADR message signatures with a private key loaded once.

openleadr 0.5.36 signs each message by handing the PEM bytes of the key to
``openleadr.messaging.create_message``, which parses the key twice per message (once
to choose the signature algorithm, once more inside signxml). Parsing an RSA key checks
it, which costs some 30 ms; the signature itself well under 1 ms. :class:`Signer` parses
the key and the certificate once and builds the same message (same templates, same
XMLDSig detached signature, same ReplayProtect properties) with the key object, which
signxml accepts. :func:`use_signer` puts it in place of a VTN service's or a VEN
client's ``_create_message``.

Verification needs no such fix: it reads the certificate embedded in each message
(its fingerprint must match the sender's), which is cheap (some 10 us). Its replay
protection is not: openleadr remembers each (timestamp, nonce) received for five
seconds and, after every message, scans all it remembers, calling the clock per entry;
at 100 messages a second that is a quarter of a millisecond per message, and more in a
burst of registrations. :func:`use_signer` puts :func:`update_nonce_cache` in its
place, which forgets in the same way but scans at most once a second. It also gives
each thread its own signature verifier (:class:`ThreadVerifier`): openleadr shares one
per process, which keeps the expectations of the call in progress, so a VTN and VENs
in two threads of one process (tests, a simulated fleet beside the service) would
refuse each other's good signatures now and then.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from lxml import etree
from openleadr import messaging, utils
from openleadr.preflight import preflight_message
from signxml import XMLSigner, XMLVerifier, methods
from signxml.algorithms import SignatureMethod

from dispatch.certs import Credentials, fingerprint

#: The canonicalization openleadr signs with (and its VTN and VENs expect).
C14N = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
OADR_NS = "http://openadr.org/oadr-2.0b/2012/07"


#: Key types OpenADR 2.0b certificates carry (RSA or ECC; DSA is not one of them), and
#: the signature method openleadr picks for each.
ALGORITHMS: dict[type, str] = {
    rsa.RSAPrivateKey: "rsa-sha256",
    ec.EllipticCurvePrivateKey: "ecdsa-sha256",
}


class Signer:
    """Signs OpenADR 2.0b messages with one certificate and key, parsed once.

    Parameters
    ----------
    cert_path, key_path : Path
        PEM certificate and private key.
    passphrase : bytes, optional
        The key's passphrase, if it is encrypted.
    """

    def __init__(self, cert_path: Path, key_path: Path, passphrase: bytes | None = None) -> None:
        cert_pem = Path(cert_path).read_bytes()
        self.fingerprint = fingerprint(cert_pem)
        self.cert = x509.load_pem_x509_certificate(cert_pem)
        key = serialization.load_pem_private_key(Path(key_path).read_bytes(), passphrase)
        if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
            raise ValueError(f"key: {type(key).__name__} keys cannot sign OpenADR messages")
        self.key = key
        kind = next(k for k in ALGORITHMS if isinstance(key, k))
        self.method = SignatureMethod.from_fragment(ALGORITHMS[kind])

    def create_message(self, message_type: str, **payload: Any) -> str:
        """The signed XML message, as ``openleadr.messaging.create_message`` makes it.

        Takes and ignores that function's ``cert``, ``key``, ``passphrase`` and
        ``disable_signature`` arguments, so that it can stand in for it.
        """
        for name in ("cert", "key", "passphrase", "disable_signature"):
            payload.pop(name, None)
        payload = preflight_message(message_type, payload)
        template = messaging.TEMPLATES.get_template(f"{message_type}.xml")
        signed_object = utils.flatten_xml(template.render(**payload))
        # signxml's signers keep state per call: one per message, as openleadr does.
        signer = XMLSigner(method=methods.detached, c14n_algorithm=C14N)
        signer.namespaces["oadr"] = OADR_NS
        signer.sign_alg = self.method
        signature_tree = signer.sign(
            etree.fromstring(signed_object),
            key=self.key,
            cert=[self.cert],
            reference_uri="#oadrSignedObject",
            signature_properties=messaging._create_replay_protect(),
        )
        envelope = messaging.TEMPLATES.get_template("oadrPayload.xml")
        return str(
            envelope.render(
                template=message_type,
                signature=etree.tostring(signature_tree).decode("utf-8"),
                signed_object=signed_object,
            )
        )


#: Seconds between scans of the nonce cache for entries past the replay window.
NONCE_PRUNE_S = 1.0
_pruned_at = [0.0]


def update_nonce_cache(timestamp: datetime, nonce: str) -> None:
    """Remember a (timestamp, nonce) just accepted, as
    ``openleadr.messaging._update_nonce_cache`` does, forgetting the ones older than
    the replay window at most once per :data:`NONCE_PRUNE_S`. A message signed before
    the window is refused by its timestamp alone, so remembering its nonce a little
    longer changes nothing."""
    messaging.NONCE_CACHE.add((timestamp, nonce))
    now = time.monotonic()
    if now - _pruned_at[0] < NONCE_PRUNE_S:
        return
    _pruned_at[0] = now
    cutoff = datetime.now(UTC) - messaging.REPLAY_PROTECT_MAX_TIME_DELTA
    # list() copies the set at once: a VTN and VENs in two threads of one process
    # share it, and iterating it while the other thread adds would fail.
    for entry in list(messaging.NONCE_CACHE):
        if entry[0] < cutoff:
            messaging.NONCE_CACHE.discard(entry)


class ThreadVerifier:
    """An ``XMLVerifier`` per thread, for ``openleadr.messaging.VERIFIER``."""

    def __init__(self) -> None:
        self._local = threading.local()

    def verify(self, *args: Any, **kwargs: Any) -> Any:
        verifier = getattr(self._local, "verifier", None)
        if verifier is None:
            verifier = self._local.verifier = XMLVerifier()
        return verifier.verify(*args, **kwargs)


def use_signer(target: Any, signer: Signer) -> None:
    """Sign ``target``'s outgoing messages with ``signer``: a VTN service or a VEN
    client (openleadr calls ``target._create_message(message_type, **payload)``), and
    check incoming ones with a verifier per thread (:class:`ThreadVerifier`) and their
    replay protection with :func:`update_nonce_cache`.

    Set on the instance: openleadr's server sets ``VTNService._create_message`` on the
    class, which every VTN in the process would share. The nonce cache is the
    process's (openleadr keeps one per process).
    """
    target._create_message = signer.create_message
    messaging._update_nonce_cache = update_nonce_cache
    if not isinstance(messaging.VERIFIER, ThreadVerifier):
        messaging.VERIFIER = ThreadVerifier()


def ven_options(credentials: Credentials, vtn_fingerprint: str) -> dict[str, Any]:
    """Keyword arguments of ``openleadr.OpenADRClient`` for signed mode: TLS with the
    VEN's certificate, the CA the VTN's must come from, and the VTN's fingerprint that
    every answer's signature must carry. Pass the client to :func:`use_signer` next."""
    return {
        "cert": str(credentials.cert_path),
        "key": str(credentials.key_path),
        "ca_file": str(credentials.ca_path),
        "vtn_fingerprint": vtn_fingerprint,
        "show_fingerprint": False,
    }
