"""How the D1 edge is served over uvicorn: one place for TLS and its client CA.

:func:`server_options` checks the TLS files before uvicorn starts (so that a bad one
is a message, never a traceback nor plain HTTP in place of TLS) and gives uvicorn's
keyword arguments; ``cardflow serve`` and ``cardflow fake-d1`` use it, and so can a
process of yours that runs :func:`cardflow.d1.receiver` under uvicorn. It needs the
standard library only (uvicorn itself is in ``cardflow[serve]``).
"""

from __future__ import annotations

import os
import ssl
from typing import Any

from .._errors import CardflowError

__all__ = ["TLSFileError", "server_options"]


class TLSFileError(CardflowError, ValueError):
    """A TLS file (certificate, key, client CA) that cannot be read or used: its own
    exit status in ``cardflow serve``, apart from a usage error of the flags. Part of
    the one hierarchy (a ``CardflowError``), and a ``ValueError`` as before."""


def _no_password() -> str:
    raise ValueError("the key is encrypted, and nothing can ask for its password")


def server_options(
    host: str,
    port: int,
    certfile: str | None = None,
    keyfile: str | None = None,
    client_ca: str | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.Config`` or ``uvicorn.run``: with ``certfile`` (and
    ``keyfile``, unless the certificate's file holds the key) it serves TLS, and with
    ``client_ca`` it refuses, in the handshake, any client without a certificate that
    CA signed. ``ValueError`` (a usage error) for a key without a certificate, a
    certificate without its key, or a client CA without TLS; ``TLSFileError`` for a
    file that cannot be read, a key that is not the certificate's, an encrypted key, a
    client CA that is no CA certificate: never plain HTTP in place of TLS, never a
    traceback."""
    if client_ca is not None and certfile is None:
        raise ValueError("--client-ca needs --certfile (and --keyfile): mutual TLS is TLS")
    if keyfile is not None and certfile is None:
        raise ValueError("--keyfile needs --certfile: TLS takes a certificate and its key")
    for flag, path in (
        ("--certfile", certfile),
        ("--keyfile", keyfile),
        ("--client-ca", client_ca),
    ):
        if path is not None and not os.access(path, os.R_OK):
            raise TLSFileError(f"{flag} {path}: cannot read the file")
    if certfile is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:  # what uvicorn will do, but here a fault is a message, not a traceback
            context.load_cert_chain(certfile, keyfile, password=_no_password)
        except (ssl.SSLError, ValueError) as error:
            if keyfile is None:  # the key was left out: a usage error, as a key alone is
                raise ValueError(
                    f"--certfile: not a certificate with its private key ({error}); give"
                    " the key with --keyfile, or one PEM file holding both"
                ) from None
            raise TLSFileError(
                f"--certfile and --keyfile: not a certificate with its private key ({error})"
            ) from None
        if client_ca is not None:
            try:
                context.load_verify_locations(client_ca)
            except ssl.SSLError as error:
                raise TLSFileError(
                    f"--client-ca {client_ca}: no CA certificate in PEM ({error})"
                ) from None
    settings: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": "warning",
        "access_log": False,
        "lifespan": "off",
    }
    if certfile is not None:
        settings |= {"ssl_certfile": certfile, "ssl_keyfile": keyfile}
        if client_ca is not None:
            settings |= {"ssl_ca_certs": client_ca, "ssl_cert_reqs": ssl.CERT_REQUIRED}
    return settings | options
