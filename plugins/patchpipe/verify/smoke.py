"""Smoke tests: the manifest's HTTP checks against a deployed environment, plus its /version.

Each check is retried (a fresh rollout may still be warming up); the result explains every check, so
the ledger can say which one failed and why.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import asdict, dataclass

import requests

from patchpipe.errors import PatchpipeError

log = logging.getLogger(__name__)


class SmokeTestFailed(PatchpipeError):
    def __init__(self, url: str, results: list["CheckResult"]):
        self.results = results
        failed = [r for r in results if not r.passed]
        super().__init__(f"smoke test of {url} failed: " + "; ".join(f"{r.name}: {r.detail}" for r in failed))


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
    """Run one SmokeCheck (name, path, expect_status, body_pattern, timeout_seconds, retries)."""
    url = base_url.rstrip("/") + check.path
    pattern = re.compile(check.body_pattern) if check.body_pattern else None
    started = time.monotonic()
    detail = ""
    for attempt in range(1, check.retries + 2):
        detail = _judge(session, url, check.expect_status, pattern, check.timeout_seconds)
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


def smoke_test(base_url: str, checks: list, version_path: str | None = None,
               build_id: str | None = None, retry_delay: float = 1.0) -> list[CheckResult]:
    """Run every check; raise SmokeTestFailed naming the failures, else return the results."""
    with requests.Session() as session:
        results = [run_check(session, base_url, check, retry_delay) for check in checks]
        if version_path and build_id:
            results.append(check_version(session, base_url, version_path, build_id, retry_delay=retry_delay))
    if not all(r.passed for r in results):
        raise SmokeTestFailed(base_url, results)
    return results


def _judge(session, url, expect_status, pattern, timeout) -> str:
    """Empty when the answer is right, else what was wrong."""
    try:
        response = session.get(url, timeout=timeout)
    except requests.RequestException as exc:
        return f"no answer: {type(exc).__name__}: {exc}"
    if response.status_code != expect_status:
        return f"status {response.status_code}, expected {expect_status}"
    if pattern and not pattern.search(response.text):
        return f"body does not match {pattern.pattern!r}"
    return ""
