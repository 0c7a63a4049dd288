"""A real HTTP server for tests that records what is POSTed to it (a webhook's receiving end).

    from support.http_sink import http_sink                # tests/ is on pytest's pythonpath

    with http_sink() as sink:
        requests.post(sink.url("hook"), json={"text": "hi"})
        sink.posts[0].json()                               # {"text": "hi"}
        sink.status = 500                                  # answer every later POST with 500

Runs on 127.0.0.1 on a free port, in a background thread.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Post:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HttpSink:
    status: int = 200
    posts: list[Post] = field(default_factory=list)
    base_url: str = ""

    def url(self, path: str = "") -> str:
        return f"{self.base_url}/{path.lstrip('/')}"


@contextmanager
def http_sink() -> Iterator[HttpSink]:
    sink = HttpSink()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            sink.posts.append(Post(self.path, dict(self.headers.items()), body))
            answer = b"ok" if sink.status < 400 else b"no_service"
            self.send_response(sink.status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    sink.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
