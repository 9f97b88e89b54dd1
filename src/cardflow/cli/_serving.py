"""How the D1 edge's commands configure uvicorn: one place for TLS and its client CA.

Imported only by commands that serve (uvicorn is in ``cardflow[serve]``).
"""

from __future__ import annotations

import ssl
from typing import Any

__all__ = ["server_options"]


def server_options(
    host: str,
    port: int,
    certfile: str | None = None,
    keyfile: str | None = None,
    client_ca: str | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.Config`` or ``uvicorn.run``: with ``certfile`` it
    serves TLS, and with ``client_ca`` it refuses, in the handshake, any client without
    a certificate that CA signed."""
    if client_ca is not None and certfile is None:
        raise ValueError("--client-ca needs --certfile (and --keyfile): mutual TLS is TLS")
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
