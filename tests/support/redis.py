"""A throwaway Redis server for tests, from Debian's ``redis-server`` package: no persistence, loopback only.

    with running_redis() as url:      # redis://127.0.0.1:<port>/0
        ...

When the package is missing the helper raises with what to install, so the tests fail rather than skip.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from support.api_server import free_port

_START_TIMEOUT_S = 30


class RedisUnavailable(RuntimeError):
    """redis-server is not installed; the message says what to install."""


@contextmanager
def running_redis() -> Iterator[str]:
    server = shutil.which("redis-server")
    if server is None:
        raise RedisUnavailable("redis-server not installed: apt-get install redis-server")
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="patchpipe-redis-"))
    log = open(workdir / "redis.log", "w")
    process = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                "--dir", str(workdir)], stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for_ping(port, process, workdir / "redis.log")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_for_ping(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"redis-server exited with {process.returncode}:\n{log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
                connection.sendall(b"PING\r\n")
                if connection.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"redis-server did not answer PING on port {port} within {_START_TIMEOUT_S}s")
