"""A steady HTTP load on the lab's endpoints during a run, counting every request that fails.

One thread per URL sends ``rate`` requests per second (each with a fresh connection, as independent
clients would) and counts answers: a failure is anything but a 200, including a refused or reset
connection and a timeout. The counts are what the zero-downtime tests assert on and print.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import requests


@dataclass
class Counts:
    ok: int = 0
    failed: int = 0
    errors: Counter = field(default_factory=Counter)  # what failed, e.g. "status 500", "ConnectionError"

    def __str__(self) -> str:
        worst = ", ".join(f"{what} x{n}" for what, n in self.errors.most_common(3))
        return f"{self.ok + self.failed} requests, {self.failed} failed" + (f" ({worst})" if worst else "")


class LoadGenerator:
    def __init__(self, urls: list[str], rate: float = 25.0, timeout: float = 5.0):
        self.urls = urls
        self.interval = 1.0 / rate
        self.timeout = timeout
        self.counts = {url: Counts() for url in urls}
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._drive, args=(url,), daemon=True) for url in urls]
        self.seconds = 0.0

    def __enter__(self) -> LoadGenerator:
        self._started = time.monotonic()
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()
        self.seconds = time.monotonic() - self._started

    def rate(self, url: str) -> float:
        counts = self.counts[url]
        return (counts.ok + counts.failed) / self.seconds if self.seconds else 0.0

    def report(self) -> str:
        return "\n".join(f"  {url}: {counts} in {self.seconds:.0f}s ({self.rate(url):.1f}/s)"
                         for url, counts in self.counts.items())

    def _drive(self, url: str) -> None:
        counts = self.counts[url]
        next_at = time.monotonic()
        while not self._stop.is_set():
            try:
                status = requests.get(url, timeout=self.timeout, headers={"Connection": "close"}).status_code
                what = None if status == 200 else f"status {status}"
            except requests.RequestException as exc:
                what = type(exc).__name__
            if what is None:
                counts.ok += 1
            else:
                counts.failed += 1
                counts.errors[what] += 1
            next_at += self.interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))
