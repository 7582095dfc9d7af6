"""A throwaway certificate authority for TLS tests, made with the openssl command."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Pki:
    ca: Path  # the CA certificate clients trust (PEM)
    keystore: Path  # the broker's key and certificate in one PEM file (LocalKafka tls_keystore)


def _openssl(*args: str, cwd: Path) -> None:
    openssl = shutil.which("openssl")
    assert openssl, "the openssl command is needed to make test certificates"
    result = subprocess.run(
        [openssl, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"openssl {args[0]} failed: {result.stderr}"


def make_pki(directory: Path, name: str = "test-ca", host_ip: str = "127.0.0.1") -> Pki:
    """A CA, and a broker certificate it signs for `host_ip` (so clients can check the name)."""
    directory.mkdir(parents=True, exist_ok=True)
    days = ("-days", "2")
    _openssl(
        *("req", "-x509", "-newkey", "rsa:2048", "-nodes", *days, "-subj", f"/CN={name}"),
        *("-keyout", "ca.key", "-out", "ca.pem"),
        cwd=directory,
    )
    # -newkey writes an unencrypted PKCS#8 key, the form Kafka's PEM key store reads.
    _openssl(
        *("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={host_ip}"),
        *("-keyout", "broker.key", "-out", "broker.csr"),
        cwd=directory,
    )
    (directory / "san.ext").write_text(f"subjectAltName=IP:{host_ip}\n")
    _openssl(
        *("x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key"),
        *("-CAcreateserial", *days, "-extfile", "san.ext", "-out", "broker.pem"),
        cwd=directory,
    )
    keystore = directory / "broker-keystore.pem"
    keystore.write_text(
        (directory / "broker.key").read_text() + (directory / "broker.pem").read_text()
    )
    return Pki(ca=directory / "ca.pem", keystore=keystore)
