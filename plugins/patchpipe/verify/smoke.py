"""Smoke checks: the manifest's HTTP checks against a deployed environment, and its /version; the
analysis (``verify.analysis``) runs them at every iteration.

Each check is retried (a fresh rollout may still be warming up); the result explains every check, so
the ledger can say which one failed and why.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import asdict, dataclass

import requests


log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckResult:
    name: str
    url: str
    passed: bool
    detail: str
    attempts: int
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


def run_check(session: requests.Session, base_url: str, check, retry_delay: float = 1.0) -> CheckResult:
    """Run one SmokeCheck (name, path, expect_status, body_pattern, timeout_seconds, retries and the
    optional max_latency_ms)."""
    url = base_url.rstrip("/") + check.path
    pattern = re.compile(check.body_pattern) if check.body_pattern else None
    max_latency_ms = getattr(check, "max_latency_ms", None)
    started = time.monotonic()
    detail = ""
    for attempt in range(1, check.retries + 2):
        detail = _judge(session, url, check.expect_status, pattern, check.timeout_seconds, max_latency_ms)
        if not detail:
            return CheckResult(check.name, url, True, "ok", attempt, time.monotonic() - started)
        log.info("smoke %s attempt %d: %s", check.name, attempt, detail)
        if attempt <= check.retries:
            time.sleep(retry_delay)
    return CheckResult(check.name, url, False, detail, check.retries + 1, time.monotonic() - started)


def check_version(session: requests.Session, base_url: str, path: str, build_id: str,
                  timeout: float = 5, retries: int = 5, retry_delay: float = 1.0) -> CheckResult:
    """The service must report the candidate's build id at ``path`` (JSON ``build_id``)."""
    url = base_url.rstrip("/") + path
    started = time.monotonic()
    detail = ""
    for attempt in range(1, retries + 2):
        try:
            response = session.get(url, timeout=timeout)
            response.raise_for_status()
            reported = response.json().get("build_id")
            if reported == build_id:
                return CheckResult("version", url, True, f"reports {build_id}", attempt, time.monotonic() - started)
            detail = f"reports build {reported!r}, expected {build_id!r}"
        except (requests.RequestException, ValueError, AttributeError) as exc:
            detail = f"no JSON build_id: {exc}"
        if attempt <= retries:
            time.sleep(retry_delay)
    return CheckResult("version", url, False, detail, retries + 1, time.monotonic() - started)


def _judge(session, url, expect_status, pattern, timeout, max_latency_ms=None) -> str:
    """Empty when the answer is right, else what was wrong."""
    started = time.monotonic()
    try:
        response = session.get(url, timeout=timeout)  # reads the whole body
    except requests.RequestException as exc:
        return f"no answer: {type(exc).__name__}: {exc}"
    latency_ms = (time.monotonic() - started) * 1000
    if response.status_code != expect_status:
        return f"status {response.status_code}, expected {expect_status}"
    if pattern and not pattern.search(response.text):
        return f"body does not match {pattern.pattern!r}"
    if max_latency_ms is not None and latency_ms > max_latency_ms:
        return f"took {latency_ms:.0f} ms, more than max_latency_ms {max_latency_ms:g}"
    return ""
