"""Certificates for real TLS handshakes: a CA, a server certificate for the loopback
address, a client certificate (D1's), and one from another CA (an impostor)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme


@dataclass(frozen=True)
class Certs:
    ca: Path
    server: Path
    """The server's key and certificate chain, in one PEM file."""
    client_cert: Path
    client_key: Path
    stranger_cert: Path
    stranger_key: Path


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    where = tmp_path_factory.mktemp("certs")
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(where / "ca.pem"))
    ca.issue_cert("127.0.0.1", "localhost").private_key_and_cert_chain_pem.write_to_path(
        str(where / "server.pem")
    )
    client = ca.issue_cert("d1-client.example")
    client.cert_chain_pems[0].write_to_path(str(where / "client.pem"))
    client.private_key_pem.write_to_path(str(where / "client.key"))
    stranger = trustme.CA().issue_cert("d1-client.example")
    stranger.cert_chain_pems[0].write_to_path(str(where / "stranger.pem"))
    stranger.private_key_pem.write_to_path(str(where / "stranger.key"))
    return Certs(
        where / "ca.pem",
        where / "server.pem",
        where / "client.pem",
        where / "client.key",
        where / "stranger.pem",
        where / "stranger.key",
    )
