"""A real HTTP server for tests: serves a directory from a background thread, with fault switches.

    from support.http_server import serve_directory    # tests/ is on pytest's pythonpath

    with serve_directory(fixtures) as server:
        server.respond_with("dists/x/Release", 404)           # any status for one path
        server.respond_with("feed.json", 429, times=1, headers={"Retry-After": "1"})  # once, then the file
        server.truncate("big.xz", keep_bytes=100)             # a short body, honest Content-Length
        server.truncate("big.xz", 100, declare_full_length=True)  # connection drops mid-body
        requests.get(server.url("big.xz"))
        server.requests                                       # what clients asked for

With ``etag=True`` every file is served with a strong ETag and ``If-None-Match`` gets a 304; with
``last_modified=True`` every file is served with its mtime as ``Last-Modified`` and
``If-Modified-Since`` (at or after it) gets a 304.
``closed_port_url()`` gives a URL where nothing listens, for "mirror unreachable" cases.
"""

from __future__ import annotations

import hashlib
import socket
import threading
from email.utils import formatdate, parsedate_to_datetime
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator
from urllib.parse import unquote, urlsplit


@dataclass(frozen=True)
class ServedRequest:
    method: str
    path: str
    headers: dict[str, str]


@dataclass(frozen=True)
class Truncation:
    keep_bytes: int
    # False: a short body with a matching Content-Length (the client sees a complete, short file).
    # True: Content-Length of the whole file, then the connection closes (the client sees a cut).
    declare_full_length: bool = False


@dataclass
class LocalHTTPServer:
    root: Path
    etag: bool = False
    last_modified: bool = False
    status_overrides: dict[str, int] = field(default_factory=dict)
    # For overrides given ``times``: how many more requests get the status before the file is served.
    override_times: dict[str, int] = field(default_factory=dict)
    override_headers: dict[str, dict[str, str]] = field(default_factory=dict)
    truncations: dict[str, Truncation] = field(default_factory=dict)
    requests: list[ServedRequest] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = field(default=None, init=False, repr=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)
    _base_url: str = field(default="", init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``; still answers after ``stop()`` so tests can build expected URLs."""
        if not self._base_url:
            raise RuntimeError("server was never started")
        return self._base_url

    def url(self, path: str = "") -> str:
        return f"{self.base_url}/{_key(path)}"

    def respond_with(self, path: str, status: int, *, times: int | None = None,
                     headers: dict[str, str] | None = None) -> None:
        """Answer requests for ``path`` with ``status`` (and no file): every one, or the next ``times``
        ones and then serve the file again. ``headers`` are sent with the status (e.g. Retry-After)."""
        key = _key(path)
        with self._lock:
            self.status_overrides[key] = status
            self.override_headers[key] = dict(headers or {})
            if times is None:
                self.override_times.pop(key, None)
            else:
                self.override_times[key] = times

    def truncate(self, path: str, keep_bytes: int, *, declare_full_length: bool = False) -> None:
        """Serve only the first ``keep_bytes`` bytes of ``path``."""
        self.truncations[_key(path)] = Truncation(keep_bytes, declare_full_length)

    def reset(self) -> None:
        """Drop every switch and the request log."""
        self.status_overrides.clear()
        self.override_times.clear()
        self.override_headers.clear()
        self.truncations.clear()
        self.requests.clear()

    def requested_paths(self) -> list[str]:
        return [request.path for request in self.requests]

    def _take_override(self, path: str) -> tuple[int, dict[str, str]] | None:
        with self._lock:
            if path not in self.status_overrides:
                return None
            answer = self.status_overrides[path], self.override_headers.get(path, {})
            if path in self.override_times:
                self.override_times[path] -= 1
                if self.override_times[path] <= 0:
                    del self.status_overrides[path], self.override_times[path]
                    self.override_headers.pop(path, None)
            return answer

    def start(self) -> "LocalHTTPServer":
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        host, port = self._server.server_address[:2]
        self._base_url = f"http://{host}:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="test-http-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> "LocalHTTPServer":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@contextmanager
def serve_directory(root: Path | str, *, etag: bool = False, last_modified: bool = False) -> Iterator[LocalHTTPServer]:
    with LocalHTTPServer(Path(root).resolve(), etag=etag, last_modified=last_modified) as server:
        yield server


def closed_port_url() -> str:
    """``http://127.0.0.1:<port>`` for a port that was free a moment ago and has no listener."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _key(path: str) -> str:
    return path.lstrip("/")


def _handler_for(server: LocalHTTPServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self._serve(send_body=True)

        def do_HEAD(self) -> None:
            self._serve(send_body=False)

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep test output clean; ``server.requests`` has the log

        def _serve(self, send_body: bool) -> None:
            path = _key(unquote(urlsplit(self.path).path))
            server.requests.append(ServedRequest(self.command, path, dict(self.headers.items())))
            override = server._take_override(path)
            if override is not None:
                self._send_empty(*override)
                return
            file = (server.root / path).resolve()
            if not file.is_relative_to(server.root) or not file.is_file():
                self._send_empty(HTTPStatus.NOT_FOUND)
                return
            body = file.read_bytes()
            etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
            modified = int(file.stat().st_mtime)
            validators = {}
            if server.etag:
                validators["ETag"] = etag
            if server.last_modified:
                validators["Last-Modified"] = formatdate(modified, usegmt=True)
            if (server.etag and self.headers.get("If-None-Match") in (etag, "*")) or (
                server.last_modified and _not_modified_since(self.headers.get("If-Modified-Since"), modified)
            ):
                self._send_empty(HTTPStatus.NOT_MODIFIED, validators)
                return
            declared_length = len(body)
            truncation = server.truncations.get(path)
            if truncation is not None:
                body = body[: truncation.keep_bytes]
                if not truncation.declare_full_length:
                    declared_length = len(body)
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(declared_length))
            for name, value in validators.items():
                self.send_header(name, value)
            if truncation is not None and truncation.declare_full_length:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if send_body:
                self.wfile.write(body)

        def _send_empty(self, status: int, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


def _not_modified_since(header: str | None, modified: int) -> bool:
    if not header:
        return False
    try:
        since = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return False
    return since.timestamp() >= modified
