#!/usr/bin/env python3
"""demo-web: the lab's own small web service (Python standard library only).

Endpoints on 0.0.0.0:8080:
  /healthz  200 "ok"
  /         200 a small HTML page
  /version  200 JSON {"app", "build_id", "hostname"}
  /metrics  Prometheus text exposition: http_requests_total{path,code},
            http_request_duration_seconds (histogram), app_build_info

DEMO_FAULT switches on a failure, for patchpipe's rollback tests:
  crash      exit 1 at start
  unhealthy  /healthz answers 503
  error      every path except /healthz and /metrics answers 500
             (/metrics keeps working so metric analysis can see the error rate)
  slow       every response is delayed by 1 s
DEMO_FAULT_ENVIRONMENT=production (or staging) limits the fault to the environment the lab's
service names in DEMO_ENVIRONMENT: a build that passes staging and fails in production.
"""
import json
import os
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

APP = "demo-web"
PORT = 8080
BUILD_ID = os.environ.get("PATCHPIPE_BUILD_ID") or "lab-original"
FAULT_ENVIRONMENT = os.environ.get("DEMO_FAULT_ENVIRONMENT", "")
FAULT = os.environ.get("DEMO_FAULT", "") if FAULT_ENVIRONMENT in ("", os.environ.get("DEMO_ENVIRONMENT")) else ""
FAULTS = ("", "crash", "unhealthy", "error", "slow")
KNOWN_PATHS = ("/", "/healthz", "/version", "/metrics")
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

PAGE = """<!doctype html>
<html><head><title>demo-web</title></head>
<body><h1>demo-web</h1><p>build {build_id} on {hostname}</p></body></html>
"""


class Metrics:
    """Request counter and latency histogram, rendered in the Prometheus text format."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = {}  # (path, code) -> count
        self.buckets = [0] * len(BUCKETS)  # cumulative: observations <= le
        self.total = 0.0
        self.count = 0

    def observe(self, path, code, seconds):
        path = path if path in KNOWN_PATHS else "other"  # bound the label cardinality
        with self.lock:
            key = (path, str(code))
            self.requests[key] = self.requests.get(key, 0) + 1
            for i, le in enumerate(BUCKETS):
                if seconds <= le:
                    self.buckets[i] += 1
            self.total += seconds
            self.count += 1

    def render(self):
        with self.lock:
            lines = [
                "# HELP http_requests_total HTTP requests served, by path and status code.",
                "# TYPE http_requests_total counter",
            ]
            for (path, code), n in sorted(self.requests.items()):
                lines.append(f'http_requests_total{{path="{path}",code="{code}"}} {n}')
            lines += [
                "# HELP http_request_duration_seconds Time spent serving HTTP requests.",
                "# TYPE http_request_duration_seconds histogram",
            ]
            for le, n in zip(BUCKETS, self.buckets):
                lines.append(f'http_request_duration_seconds_bucket{{le="{le}"}} {n}')
            lines += [
                f'http_request_duration_seconds_bucket{{le="+Inf"}} {self.count}',
                f"http_request_duration_seconds_sum {self.total:.6f}",
                f"http_request_duration_seconds_count {self.count}",
                "# HELP app_build_info The running build; always 1.",
                "# TYPE app_build_info gauge",
                f'app_build_info{{app="{APP}",build_id="{BUILD_ID}"}} 1',
            ]
        return "\n".join(lines) + "\n"


METRICS = Metrics()


class Handler(BaseHTTPRequestHandler):
    server_version = "demo-web/1.0"

    def do_GET(self):
        started = time.monotonic()
        path = self.path.split("?", 1)[0]
        if FAULT == "slow":
            time.sleep(1)
        code, ctype, body = self.route(path)
        payload = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        METRICS.observe(path, code, time.monotonic() - started)

    def route(self, path):
        if path == "/healthz":
            if FAULT == "unhealthy":
                return 503, "text/plain", "unhealthy (DEMO_FAULT=unhealthy)\n"
            return 200, "text/plain", "ok\n"
        if path == "/metrics":
            return 200, "text/plain; version=0.0.4; charset=utf-8", METRICS.render()
        if FAULT == "error":
            return 500, "text/plain", "internal error (DEMO_FAULT=error)\n"
        if path == "/":
            return 200, "text/html; charset=utf-8", PAGE.format(build_id=BUILD_ID, hostname=socket.gethostname())
        if path == "/version":
            info = {"app": APP, "build_id": BUILD_ID, "hostname": socket.gethostname()}
            return 200, "application/json", json.dumps(info) + "\n"
        return 404, "text/plain", "not found\n"

    def log_message(self, fmt, *args):
        if not self.path.startswith("/healthz"):  # the health check runs every 2 s
            super().log_message(fmt, *args)


def main():
    if FAULT not in FAULTS:
        sys.exit(f"{APP}: unknown DEMO_FAULT={FAULT!r}; use one of {', '.join(FAULTS[1:])} or leave it unset")
    if FAULT == "crash":
        print(f"{APP}: crashing on purpose (DEMO_FAULT=crash)", file=sys.stderr)
        sys.exit(1)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # PID 1 has no default SIGTERM action
    server = ThreadingHTTPServer(("0.0.0.0", PORT), Handler)
    print(f"{APP} build {BUILD_ID} listening on :{PORT}" + (f" (DEMO_FAULT={FAULT})" if FAULT else ""), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
