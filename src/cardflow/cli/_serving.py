"""How the D1 edge's commands configure uvicorn: one place for TLS and its client CA.

Imported only by commands that serve (uvicorn is in ``cardflow[serve]``).
"""

from __future__ import annotations

import ssl

import uvicorn
from starlette.types import ASGIApp

__all__ = ["server_config"]


def server_config(
    app: ASGIApp | str,
    host: str,
    port: int,
    certfile: str | None = None,
    keyfile: str | None = None,
    client_ca: str | None = None,
    **options: object,
) -> uvicorn.Config:
    """A uvicorn configuration; with ``certfile`` it serves TLS, and with ``client_ca``
    it refuses, in the handshake, any client without a certificate that CA signed."""
    if client_ca is not None and certfile is None:
        raise ValueError("--client-ca needs --certfile (and --keyfile): mutual TLS is TLS")
    tls: dict[str, object] = {}
    if certfile is not None:
        tls = {"ssl_certfile": certfile, "ssl_keyfile": keyfile}
        if client_ca is not None:
            tls |= {"ssl_ca_certs": client_ca, "ssl_cert_reqs": ssl.CERT_REQUIRED}
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        **tls,  # type: ignore[arg-type]
        **options,  # type: ignore[arg-type]
    )
