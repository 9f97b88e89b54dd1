"""Real databases for the store's tests: SQLite files, and a throwaway PostgreSQL.

``postgres_server`` starts a PostgreSQL cluster of its own for the session (initdb
into a temporary folder, a unix socket in it, trust authentication; run as the
``postgres`` user when the tests run as root, since the server refuses root), and
stops it and removes the folder at the end. Each test gets a new database in it.
Where no server binary is found, the PostgreSQL tests call ``components.missing``.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import components

ENGINES = ["sqlite", "postgresql"]
_counter = itertools.count()


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


class PostgresServer:
    """A PostgreSQL cluster in a temporary folder, reached over a unix socket there."""

    def __init__(self, root: Path, user: str | None) -> None:
        self.root = root
        self.data = root / "data"
        self.user = user
        self.port = 5432 + os.getpid() % 1000

    def _as_owner(self, *argv: str) -> list[str]:
        return ["runuser", "-u", self.user, "--", *argv] if self.user else list(argv)

    def start(self, initdb: str, pg_ctl: str) -> None:
        subprocess.run(
            self._as_owner(
                initdb,
                "-D",
                str(self.data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
            ),
            check=True,
            capture_output=True,
        )
        options = (
            f"-k {self.root} -c listen_addresses='' -p {self.port} -c fsync=off"
            " -c synchronous_commit=off -c full_page_writes=off -c max_connections=60"
        )
        subprocess.run(
            self._as_owner(
                pg_ctl,
                "-D",
                str(self.data),
                "-o",
                options,
                "-l",
                str(self.root / "log"),
                "-w",
                "-t",
                "60",
                "start",
            ),
            check=True,
            capture_output=True,
        )

    def stop(self, pg_ctl: str) -> None:
        subprocess.run(
            self._as_owner(pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop"),
            check=False,
            capture_output=True,
        )

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@/{database}?host={self.root}&port={self.port}"

    def new_database(self) -> str:
        import psycopg

        name = f"store_{os.getpid()}_{next(_counter)}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}")
        return self.url(name)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    if initdb is None or pg_ctl is None or _binary("postgres") is None:
        components.missing("PostgreSQL", "no initdb, pg_ctl or postgres binary on PATH")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        components.missing("PostgreSQL", "psycopg is not installed (cardflow[postgres])")
    user: str | None = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            components.missing("PostgreSQL", "running as root and there is no postgres user")
        user = "postgres"
    root = Path(tempfile.mkdtemp(prefix="cardflow-pg-"))
    if user is not None:
        shutil.chown(root, user)
    server = PostgresServer(root, user)
    try:
        server.start(initdb, pg_ctl)
    except subprocess.CalledProcessError as exc:
        log = root / "log"
        detail = log.read_text() if log.exists() else exc.stderr.decode(errors="replace")
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"PostgreSQL did not start: {detail[-2000:]}")
    try:
        yield server
    finally:
        server.stop(pg_ctl)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_url(engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A new, empty store on each engine."""
    if engine == "sqlite":
        return f"sqlite:///{tmp_path}/store.db?synchronous=normal"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.new_database()
