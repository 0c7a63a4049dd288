"""A throwaway PostgreSQL server for tests, from Debian's ``postgresql`` package.

    from support.postgres import running_postgres     # tests/ is on pytest's pythonpath

    with running_postgres() as server:
        url = server.create_database("store_test")     # postgresql+psycopg://...?host=<socket dir>
        engine = make_engine(url)

``initdb`` into a fresh temporary directory, then ``pg_ctl start`` with fsync off, no TCP listener and
its unix socket in that directory, on a port that was free (the port names the socket file). It is
stopped and deleted on exit. ``initdb`` refuses to run as root, so as root every server command runs
as the ``postgres`` user that the package creates (``runuser``), in a directory that user owns.

Needs the ``postgresql`` Debian package and the ``psycopg`` driver; when either is missing the
helper raises with what to install, so the tests fail rather than skip.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SERVER_USER = "postgres"  # created by Debian's postgresql-common
SUPERUSER = "patchpipe"
_START_TIMEOUT_S = 60


class PostgresUnavailable(RuntimeError):
    """PostgreSQL (server binaries or driver) is not installed; the message says what to install."""


@dataclass
class PostgresServer:
    root: Path
    port: int
    _databases: itertools.count = field(default_factory=lambda: itertools.count(1), repr=False)

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{SUPERUSER}@/{database}?host={self.socket_dir}&port={self.port}"

    def create_database(self, prefix: str = "test") -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        import psycopg

        name = f"{prefix}_{next(self._databases)}"
        with psycopg.connect(host=str(self.socket_dir), port=self.port, user=SUPERUSER, dbname="postgres",
                             autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def binary_dir() -> Path:
    """The newest installed server's bin directory (Debian keeps it off PATH)."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if not candidates:
        raise PostgresUnavailable("PostgreSQL server not installed: apt-get install postgresql")
    return candidates[-1].parent


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise PostgresUnavailable("the psycopg driver is not installed: pip install 'psycopg[binary]'") from exc
    binaries = binary_dir()
    as_root = os.geteuid() == 0
    root = Path(tempfile.mkdtemp(prefix="patchpipe-pg-"))
    try:
        (root / "socket").mkdir()
        if as_root:
            server_user = pwd.getpwnam(SERVER_USER)
            for path in (root, root / "socket"):
                os.chown(path, server_user.pw_uid, server_user.pw_gid)
        server = PostgresServer(root, _free_port())
        _run(as_root, [binaries / "initdb", "-D", root / "data", "-U", SUPERUSER, "--auth=trust", "-E", "UTF8",
                       "--no-sync", "--no-instructions"])
        options = (f"-p {server.port} -k {server.socket_dir} -c listen_addresses='' -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off")
        _run(as_root, [binaries / "pg_ctl", "-D", root / "data", "-l", root / "server.log", "-o", options,
                       "-w", "-t", str(_START_TIMEOUT_S), "start"])
        try:
            yield server
        finally:
            _run(as_root, [binaries / "pg_ctl", "-D", root / "data", "-m", "immediate", "-w", "stop"], check=False)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _run(as_root: bool, command: list[object], check: bool = True) -> None:
    argv = [str(part) for part in command]
    if as_root:
        argv = ["runuser", "-u", SERVER_USER, "--", *argv]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=_START_TIMEOUT_S + 30, cwd="/")
    if check and result.returncode != 0:
        log = Path(command[command.index("-l") + 1]) if "-l" in command else None
        tail = log.read_text()[-2000:] if log is not None and log.exists() else ""
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout}{result.stderr}{tail}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One server for the test session; import this name into a test module to use it."""
    with running_postgres() as server:
        yield server
