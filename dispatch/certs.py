"""A development certificate authority for OpenADR signed mode.

Signed mode needs three kinds of certificate: a CA that both sides trust, a server
certificate for the VTN (TLS and message signatures) and one client certificate per VEN
(TLS client authentication and message signatures). In production they come from the
OpenADR Alliance's PKI or the utility's; this module makes throw-away ones for a
machine's loopback: RSA 2048 keys, SHA-256 signatures, the VTN's certificate valid for
``127.0.0.1`` and ``localhost``.

A VTN knows a VEN by its certificate's fingerprint as OpenADR defines it
(:func:`fingerprint`): the last ten bytes of the SHA-256 of the DER certificate, as
upper-case hex pairs separated by colons.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: Hosts the development VTN certificate is valid for.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost")


def fingerprint(pem: str | bytes) -> str:
    """The OpenADR fingerprint of a PEM certificate (as openleadr computes it).

    Raises ``ValueError`` when ``pem`` holds no PEM certificate.
    """
    text = pem.decode() if isinstance(pem, bytes) else pem
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise ValueError("not a PEM certificate (no BEGIN CERTIFICATE line)")
    try:
        der = ssl.PEM_cert_to_DER_cert(text.strip() + "\n")
        x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise ValueError(f"not a readable PEM certificate ({exc})") from exc
    digest = hashlib.sha256(der).hexdigest().upper()[-20:]
    return ":".join(digest[i : i + 2] for i in range(0, 20, 2))


def issued_by(pem: str | bytes, ca_pem: bytes) -> bool:
    """Whether the certificate ``pem`` is signed by one of the CA certificates in
    ``ca_pem`` (what a TLS server trusting them would check first)."""
    cert = x509.load_pem_x509_certificate(pem.encode() if isinstance(pem, str) else pem)
    for ca in x509.load_pem_x509_certificates(ca_pem):
        try:
            cert.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return True
    return False


@dataclass(frozen=True)
class Credentials:
    """Where one party's certificate, private key and trusted CA are (PEM files)."""

    cert_path: Path
    key_path: Path
    ca_path: Path

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.cert_path.read_bytes())


@dataclass(frozen=True)
class Issued:
    """A key and its certificate."""

    key: rsa.RSAPrivateKey
    cert: x509.Certificate

    def write(self, cert_path: Path, key_path: Path) -> None:
        """Write the certificate and the (unencrypted, owner-only) key as PEM."""
        cert_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        key_path.touch(mode=0o600)
        key_path.write_bytes(
            self.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "OpenVPP development"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _builder(
    subject: str, issuer: x509.Name, key: rsa.RSAPrivateKey, days: int
) -> x509.CertificateBuilder:
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    )


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def make_ca(common_name: str = "OpenVPP development CA", days: int = 365) -> Issued:
    """A self-signed CA that may sign end-entity certificates only."""
    key = _new_key()
    cert = (
        _builder(common_name, _name(common_name), key, days)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return Issued(key, cert)


def issue(
    ca: Issued,
    common_name: str,
    *,
    server_hosts: Iterable[str] = (),
    days: int = 365,
) -> Issued:
    """A certificate signed by ``ca``: a TLS server's for ``server_hosts`` (IP
    addresses or DNS names) when given, else a client's (a VEN)."""
    key = _new_key()
    hosts = list(server_hosts)
    builder = (
        _builder(common_name, ca.cert.subject, key, days)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), False
        )
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if hosts else ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
    )
    if hosts:
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return Issued(key, builder.sign(ca.key, hashes.SHA256()))


def load_ca(cert_path: Path, key_path: Path) -> Issued:
    """A CA written by :func:`dev_pki` (or any PEM CA certificate and its key)."""
    key = serialization.load_pem_private_key(key_path.read_bytes(), None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{key_path}: the CA key must be an RSA key")
    return Issued(key, x509.load_pem_x509_certificate(cert_path.read_bytes()))


@dataclass(frozen=True)
class DevPki:
    """The files of a development PKI in one folder.

    ``ca.pem``/``ca.key`` (the CA), ``vtn.pem``/``vtn.key`` (the VTN, for
    ``127.0.0.1`` and ``localhost``) and ``vens/<ven_id>.pem``/``.key`` per VEN.
    """

    folder: Path

    @property
    def ca_path(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def vtn(self) -> Credentials:
        return Credentials(self.folder / "vtn.pem", self.folder / "vtn.key", self.ca_path)

    def ven(self, ven_id: str) -> Credentials:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", ven_id):
            raise ValueError(f"ven_id: letters, digits, '.', '_' and '-' only, not {ven_id!r}")
        folder = self.folder / "vens"
        return Credentials(folder / f"{ven_id}.pem", folder / f"{ven_id}.key", self.ca_path)


def dev_pki(
    folder: Path, ven_ids: Iterable[str] = (), hosts: Iterable[str] = LOOPBACK_HOSTS
) -> DevPki:
    """Make (or complete) a development PKI in ``folder``: a CA and a VTN certificate
    unless they are there, and a client certificate for each VEN id that has none."""
    pki = DevPki(folder)
    (folder / "vens").mkdir(parents=True, exist_ok=True)
    ca_key = folder / "ca.key"
    if pki.ca_path.exists() and ca_key.exists():
        ca = load_ca(pki.ca_path, ca_key)
    else:
        ca = make_ca()
        ca.write(pki.ca_path, ca_key)
    vtn = pki.vtn
    if not (vtn.cert_path.exists() and vtn.key_path.exists()):
        issue(ca, "openvpp-vtn", server_hosts=hosts).write(vtn.cert_path, vtn.key_path)
    for ven_id in ven_ids:
        ven = pki.ven(ven_id)
        if not (ven.cert_path.exists() and ven.key_path.exists()):
            issue(ca, ven_id).write(ven.cert_path, ven.key_path)
    return pki
