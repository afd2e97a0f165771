"""A real Mosquitto broker for the MQTT bridge's tests, in a directory of its own.

Each `Mosquitto` writes its own configuration, so the system's broker (if one runs) is never
touched: a plain listener on 127.0.0.1, optionally a TLS listener whose certificate for
localhost/127.0.0.1 is signed by a test CA made here, optionally a password file, and
persistence in the directory, so that `restart()` keeps the sessions and the QoS 1 messages
queued for clients that are away, as a real broker's restart does.

    mosquitto_or_skip()
    with Mosquitto(tmp_path, tls=True, users={"board": "secret"}) as broker:
        link = BrokerLink(host="localhost", port=broker.tls_port, tls=True,
                          ca_file=broker.ca_file, ...)
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd")
#: Seconds for the broker to listen after it is started; it takes a few milliseconds.
START_TIMEOUT = 10.0


def mosquitto_installed() -> bool:
    return os.access(MOSQUITTO, os.X_OK)


def mosquitto_or_skip() -> None:
    """Skip the calling test, with one line saying how to fix it, when there is no broker."""
    if not mosquitto_installed():
        pytest.skip("mosquitto is not installed: apt-get install mosquitto")


@dataclass(frozen=True)
class CertificateAuthority:
    """A throwaway CA: EC P-256 keys, which are quick to make and which Mosquitto accepts."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @classmethod
    def make(cls, name: str = "Meshboard test CA") -> CertificateAuthority:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        cert = (
            _builder(subject, subject, key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(ca=True), critical=True)
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    def write(self, path: Path) -> Path:
        path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        return path

    def issue_server(self, cert_path: Path, key_path: Path) -> None:
        """A server certificate for localhost and 127.0.0.1, as a client checks the name."""
        key = ec.generate_private_key(ec.SECP256R1())
        names = x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        )
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
        cert = (
            _builder(subject, self.cert.subject, key.public_key())
            .add_extension(names, critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(ca=False), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def free_ports(count: int) -> list[int]:
    """Distinct free ports on 127.0.0.1: all sockets stay bound until every port is chosen."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def write_password_file(path: Path, users: Mapping[str, str]) -> None:
    """Mosquitto's password file, made by its own tool so the hash is one it reads."""
    path.unlink(missing_ok=True)
    if MOSQUITTO_PASSWD is None:
        # Mosquitto still reads its older `$6$` hashes: SHA-512 of the password then the salt.
        lines = []
        for user, password in users.items():
            salt = os.urandom(12)
            digest = hashlib.sha512(password.encode() + salt).digest()
            encoded = f"$6${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"
            lines.append(f"{user}:{encoded}\n")
        path.write_text("".join(lines), encoding="utf-8")
        return
    for i, (user, password) in enumerate(users.items()):
        create = ["-c"] if i == 0 else []
        subprocess.run(
            [MOSQUITTO_PASSWD, *create, "-b", str(path), user, password],
            check=True,
            capture_output=True,
            timeout=30,
        )


class Mosquitto:
    """One broker process on free ports of 127.0.0.1, configured and kept in `directory`."""

    def __init__(
        self,
        directory: Path,
        *,
        tls: bool = False,
        users: Mapping[str, str] | None = None,
    ) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.port, self.tls_port = free_ports(2)
        self.tls = tls
        self.ca_file = directory / "ca.pem"
        self.log_file = directory / "mosquitto.log"
        self.config_file = directory / "mosquitto.conf"
        self._process: subprocess.Popen[bytes] | None = None
        lines = [
            "per_listener_settings false",
            f"listener {self.port} 127.0.0.1",
        ]
        if tls:
            ca = CertificateAuthority.make()
            ca.write(self.ca_file)
            ca.issue_server(directory / "server.pem", directory / "server.key")
            lines += [
                f"listener {self.tls_port} 127.0.0.1",
                f"cafile {self.ca_file}",
                f"certfile {directory / 'server.pem'}",
                f"keyfile {directory / 'server.key'}",
            ]
        if users:
            write_password_file(directory / "passwords", users)
            lines += [f"password_file {directory / 'passwords'}", "allow_anonymous false"]
        else:
            lines.append("allow_anonymous true")
        persistence = directory / "persistence"
        persistence.mkdir(exist_ok=True)
        lines += [
            "persistence true",
            f"persistence_location {persistence}/",
            "log_dest stderr",
            "log_type all",
            "connection_messages true",
        ]
        if os.geteuid() == 0:
            # As root, Mosquitto would switch to the user `mosquitto`, who cannot read a
            # private temporary directory.
            lines.append("user root")
        self.config_file.write_text("\n".join(lines) + "\n", encoding="utf-8")

    @property
    def log(self) -> str:
        """Everything the broker has logged, over all its starts."""
        if not self.log_file.exists():
            return ""
        return self.log_file.read_text(encoding="utf-8", errors="replace")

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the broker and return once every listener accepts connections."""
        if self.running:
            return
        with self.log_file.open("ab") as log:
            self._process = subprocess.Popen(
                [MOSQUITTO, "-c", str(self.config_file)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        ports = [self.port, self.tls_port] if self.tls else [self.port]
        deadline = time.monotonic() + START_TIMEOUT
        for port in ports:
            while not _accepts(port):
                if self._process.poll() is not None:
                    code = self._process.returncode
                    raise RuntimeError(f"mosquitto exited with {code}; its log:\n{self.log}")
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"mosquitto did not listen on port {port} within {START_TIMEOUT} s; "
                        f"its log:\n{self.log}"
                    )
                time.sleep(0.02)

    def stop(self) -> None:
        """SIGTERM, as systemd stops it: Mosquitto saves its persistence file on the way out."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def restart(self) -> None:
        """Stop and start again on the same ports, with the sessions it saved."""
        self.stop()
        self.start()

    def __enter__(self) -> Mosquitto:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False
