#!/usr/bin/env python3
"""vendor-app 2.4: a "third-party" inventory API (Python standard library only).

We only get this as an image; patchpipe patches it in place. Endpoints on 0.0.0.0:8080:
  /healthz        200 "ok"
  /               200 JSON index of the API
  /items          200 JSON list of items
  /items/<sku>    200 JSON item, 404 if unknown
  /version        200 JSON {"app", "version", "build_id", "hostname"}
  /metrics        Prometheus text: http_requests_total{path,code},
                  http_request_duration_seconds (histogram), app_build_info

DEMO_FAULT (crash | unhealthy | error | slow) behaves as in demo-web.
"""
import json
import os
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

APP, VERSION, PORT = "vendor-app", "2.4", 8080
BUILD_ID = os.environ.get("PATCHPIPE_BUILD_ID") or "vendor-2.4"
FAULT = os.environ.get("DEMO_FAULT", "")
FAULTS = ("", "crash", "unhealthy", "error", "slow")
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

ITEMS = {
    "WID-001": {"sku": "WID-001", "name": "widget", "stock": 42},
    "GAD-002": {"sku": "GAD-002", "name": "gadget", "stock": 7},
    "SPR-003": {"sku": "SPR-003", "name": "sprocket", "stock": 0},
}

_lock = threading.Lock()
_requests = {}  # (path label, code) -> count
_buckets = [0] * len(BUCKETS)  # cumulative
_sum = 0.0
_count = 0


def observe(path, code, seconds):
    global _sum, _count
    label = "/items/{sku}" if path.startswith("/items/") else path
    if label not in ("/", "/healthz", "/items", "/items/{sku}", "/version", "/metrics"):
        label = "other"
    with _lock:
        _requests[(label, str(code))] = _requests.get((label, str(code)), 0) + 1
        for i, le in enumerate(BUCKETS):
            if seconds <= le:
                _buckets[i] += 1
        _sum += seconds
        _count += 1


def metrics_text():
    with _lock:
        out = ["# HELP http_requests_total HTTP requests served, by path and status code.",
               "# TYPE http_requests_total counter"]
        out += [f'http_requests_total{{path="{p}",code="{c}"}} {n}' for (p, c), n in sorted(_requests.items())]
        out += ["# HELP http_request_duration_seconds Time spent serving HTTP requests.",
                "# TYPE http_request_duration_seconds histogram"]
        out += [f'http_request_duration_seconds_bucket{{le="{le}"}} {n}' for le, n in zip(BUCKETS, _buckets)]
        out += [f'http_request_duration_seconds_bucket{{le="+Inf"}} {_count}',
                f"http_request_duration_seconds_sum {_sum:.6f}",
                f"http_request_duration_seconds_count {_count}",
                "# HELP app_build_info The running build; always 1.",
                "# TYPE app_build_info gauge",
                f'app_build_info{{app="{APP}",build_id="{BUILD_ID}"}} 1']
    return "\n".join(out) + "\n"


class Api(BaseHTTPRequestHandler):
    server_version = f"vendor-app/{VERSION}"

    def do_GET(self):
        started = time.monotonic()
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        if FAULT == "slow":
            time.sleep(1)
        code, body = self.answer(path)
        if isinstance(body, str):
            ctype = "text/plain; version=0.0.4; charset=utf-8" if path == "/metrics" else "text/plain"
            payload = body.encode()
        else:
            ctype, payload = "application/json", (json.dumps(body) + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        observe(path, code, time.monotonic() - started)

    def answer(self, path):
        if path == "/healthz":
            return (503, "unhealthy (DEMO_FAULT=unhealthy)\n") if FAULT == "unhealthy" else (200, "ok\n")
        if path == "/metrics":
            return 200, metrics_text()
        if FAULT == "error":
            return 500, {"error": "internal error (DEMO_FAULT=error)"}
        if path == "/":
            return 200, {"app": APP, "endpoints": ["/items", "/items/{sku}", "/version", "/healthz", "/metrics"]}
        if path == "/version":
            return 200, {"app": APP, "version": VERSION, "build_id": BUILD_ID, "hostname": socket.gethostname()}
        if path == "/items":
            return 200, {"items": list(ITEMS.values())}
        if path.startswith("/items/"):
            item = ITEMS.get(path[len("/items/"):])
            return (200, item) if item else (404, {"error": "no such item"})
        return 404, {"error": "not found"}

    def log_message(self, fmt, *args):
        if not self.path.startswith("/healthz"):
            super().log_message(fmt, *args)


if __name__ == "__main__":
    if FAULT not in FAULTS:
        sys.exit(f"{APP}: unknown DEMO_FAULT={FAULT!r}; use one of {', '.join(FAULTS[1:])} or leave it unset")
    if FAULT == "crash":
        sys.exit(f"{APP}: crashing on purpose (DEMO_FAULT=crash)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"{APP} {VERSION} build {BUILD_ID} listening on :{PORT}", flush=True)
    ThreadingHTTPServer(("0.0.0.0", PORT), Api).serve_forever()
