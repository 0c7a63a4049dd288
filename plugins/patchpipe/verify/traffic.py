"""Traffic during an analysis, as Flagger's load tester gives a canary: a quiet staging environment
serves no requests, so its success rate and latency would have no data and the analysis would fail
closed for no fault of the build. ``Traffic`` sends steady GETs to the smoke checks' paths in a
background thread while the analysis runs; answers are not judged here, the metrics judge them.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import requests


class Traffic:
    def __init__(self, target_url: str, paths: Sequence[str], per_second: float, timeout: float = 5.0):
        self.urls = [target_url.rstrip("/") + path for path in paths]
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self.timeout = timeout
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._send, name="analysis-traffic", daemon=True)

    def __enter__(self) -> Traffic:
        if self.urls and self.interval:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _send(self) -> None:
        with requests.Session() as session:
            while not self._stop.is_set():
                url = self.urls[self.sent % len(self.urls)]
                try:
                    session.get(url, timeout=self.timeout).close()
                except requests.RequestException:
                    pass  # a failed request shows in the metrics, which is the point
                self.sent += 1
                self._stop.wait(self.interval)
