"""``cardflow.d1.server_options``: uvicorn's settings, TLS files checked before anything
serves (``cardflow.store.logging_config`` is tested through the commands' options, in
tests/test_cli_logs.py)."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

import cardflow
from cardflow.d1 import TLSFileError, server_options


def test_plain_http_settings_and_extra_options() -> None:
    options = server_options("127.0.0.1", 8000, workers=2)
    assert options == {
        "host": "127.0.0.1",
        "port": 8000,
        "log_level": "warning",
        "access_log": False,
        "lifespan": "off",
        "workers": 2,
    }


def test_tls_files_are_checked_before_serving(tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    chain, key, authority = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.cert_chain_pems[0].write_to_path(str(chain))
    cert.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(authority))
    served = server_options("::1", 8443, str(chain), str(key), str(authority))
    assert served["ssl_certfile"] == str(chain)
    assert served["ssl_ca_certs"] == str(authority)
    assert served["ssl_cert_reqs"] == ssl.CERT_REQUIRED
    with pytest.raises(ValueError, match="--keyfile needs --certfile"):
        server_options("::1", 8443, keyfile=str(key))
    with pytest.raises(ValueError, match="--client-ca needs --certfile"):
        server_options("::1", 8443, client_ca=str(authority))
    with pytest.raises(ValueError, match="give the key with --keyfile"):
        server_options("::1", 8443, str(chain))  # the certificate without its key
    assert issubclass(TLSFileError, cardflow.CardflowError)
    with pytest.raises(TLSFileError, match="cannot read the file"):
        server_options("::1", 8443, str(tmp_path / "missing.pem"), str(key))
    other = trustme.CA().issue_cert("localhost")
    wrong = tmp_path / "other-key.pem"
    other.private_key_pem.write_to_path(str(wrong))
    with pytest.raises(TLSFileError, match="not a certificate with its private key"):
        server_options("::1", 8443, str(chain), str(wrong))
    with pytest.raises(TLSFileError, match="no CA certificate"):
        server_options("::1", 8443, str(chain), str(key), str(key))
