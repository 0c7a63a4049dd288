"""Post-deploy analysis, Flagger-style: named checks every interval, a failure threshold, a verdict.

For each of ``iterations`` iterations, ``interval_seconds`` apart (the first one an interval after the
start, so the window is interval x iterations), every check runs once:

- the manifest's smoke checks (status, body pattern, latency bound; ``verify.smoke.run_check``),
- the ``/version`` check: the running build must be the expected one (``verify.smoke.check_version``),
- every metric check: a Prometheus query whose value must stay within its bounds.

An iteration fails when any of its checks fails. When the failed iterations reach
``failure_threshold`` the analysis stops and fails (roll back), naming the failing check, its value,
its bound and the iteration; after every iteration without reaching it, it passes (promote).
Prometheus unreachable, a query it rejects, or no data fail the metric check: the analysis fails
closed, never promoting what it could not measure.

The clock is injectable (``Clock``) so the loop is tested without waiting.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

import requests

from patchpipe.errors import PatchpipeError
from patchpipe.fleet.field_types import STAGES
from patchpipe.fleet.models import Analysis, DeployTarget, Fleet, FleetImage, SmokeCheck
from patchpipe.verify.prometheus import PrometheusClient, PrometheusError
from patchpipe.verify.smoke import check_version, run_check
from patchpipe.verify.traffic import Traffic

log = logging.getLogger(__name__)


class Clock(Protocol):
    """What the analysis needs of time; ``SystemClock`` in production, a fake in tests."""

    def monotonic(self) -> float: ...

    def time(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@dataclass(frozen=True)
class Observation:
    """One check in one iteration."""

    check: str
    """The check's name: a smoke check's, ``version``, or a metric's."""
    kind: str
    """``smoke``, ``version`` or ``metric``."""
    iteration: int
    """1-based."""
    at_seconds: float
    """Seconds since the analysis started."""
    passed: bool
    value: float | str | None
    """A metric's value; a smoke check's response time in ms; the build id /version reported; None
    when there was nothing to measure (no answer, no data)."""
    bound: str
    """What the value had to be, e.g. '>= 99' or 'status 200, <= 300 ms'."""
    detail: str
    """'ok', or what was wrong."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AnalysisResult:
    environment: str
    target_url: str
    passed: bool
    reason: str
    """One line: the verdict and why."""
    iterations: int
    """Iterations configured."""
    iterations_run: int
    failed_iterations: int
    failure_threshold: int
    interval_seconds: float
    started_at: str
    """UTC, ISO 8601."""
    seconds: float
    failing: Observation | None = None
    """The first failing check of the iteration that reached the threshold (None when passed)."""
    observations: tuple[Observation, ...] = field(default=())

    def series(self) -> dict[str, list[tuple[int, float | str | None, bool]]]:
        """Per check, its (iteration, value, passed) over time."""
        out: dict[str, list[tuple[int, float | str | None, bool]]] = {}
        for obs in self.observations:
            out.setdefault(obs.check, []).append((obs.iteration, obs.value, obs.passed))
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data for XCom and the ledger."""
        data = asdict(self)
        data["observations"] = [obs.to_dict() for obs in self.observations]
        return data

    def raise_for_failure(self) -> AnalysisResult:
        """Raise AnalysisFailed when the analysis failed; return self otherwise."""
        if not self.passed:
            raise AnalysisFailed(self)
        return self


class AnalysisFailed(PatchpipeError):
    """The analysis reached its failure threshold; ``result`` holds every observation."""

    def __init__(self, result: AnalysisResult):
        self.result = result
        super().__init__(result.reason)

    @property
    def ledger_detail(self) -> dict[str, Any]:
        """What the ledger keeps of a failed analysis, beside its message: every observation."""
        return {"analysis": self.result.to_dict()}


def service_name(target: DeployTarget) -> str:
    """What ``{service}`` stands for in metric queries: the Swarm service, container or Deployment."""
    if target.kubernetes is not None:
        return target.kubernetes.deployment
    return target.swarm_service or target.docker_container or ""


def analyze_image(fleet: Fleet, image: FleetImage | str, environment: str, build_id: str | None, *,
                  prometheus: PrometheusClient | None = None, clock: Clock | None = None) -> AnalysisResult:
    """Analyse ``image``'s deploy in ``environment`` with everything from the manifest: its target
    url, smoke checks, version_path and its analysis merged over defaults.analysis.

    ``build_id`` is what /version must report (None: no version check).
    """
    entry = fleet.image(image) if isinstance(image, str) else image
    if environment not in STAGES:
        raise PatchpipeError(f"no environment {environment!r} to analyse; use one of {', '.join(STAGES)}")
    target = entry.deploy[environment]  # type: ignore[index]
    return analyze(target.url, environment, entry.smoke, fleet.analysis_for(entry), prometheus,
                   service=service_name(target), image=entry.name, version_path=entry.version_path,
                   build_id=build_id, clock=clock)


def analyze(target_url: str, environment: str, checks: Sequence[SmokeCheck], analysis_settings: Analysis,
            prometheus: PrometheusClient | None = None, *, service: str, image: str,
            version_path: str | None = None, build_id: str | None = None, clock: Clock | None = None,
            session: requests.Session | None = None) -> AnalysisResult:
    """Run the analysis (see the module doc) and return its result; it never raises for a failed check.

    ``analysis_settings`` is resolved over the built-in metrics (``Analysis.resolved``), so a bare
    ``Analysis()`` means Flagger's defaults. ``prometheus`` defaults to a client of its
    ``prometheus_url``. ``service``, ``image`` and ``environment`` fill the queries' placeholders.
    """
    settings = analysis_settings.resolved()
    clock = clock or SystemClock()
    own_session = session is None
    session = session or requests.Session()
    own_prometheus = prometheus is None and bool(settings.active_metrics)
    if prometheus is None and settings.active_metrics:
        prometheus = PrometheusClient(settings.prometheus_url or "")
    probes = _Probes(target_url, environment, checks, settings, prometheus, service, image,
                     version_path, build_id, session)
    paths = traffic_paths(checks, version_path)
    try:
        with Traffic(target_url, paths, settings.traffic_per_second):
            return _run(probes, settings, clock)
    finally:
        if own_session:
            session.close()
        if own_prometheus and prometheus is not None:
            prometheus.close()


def traffic_paths(checks: Sequence[SmokeCheck], version_path: str | None) -> list[str]:
    """Where the analysis' own traffic goes: the smoke paths that answer 2xx, and the version path,
    since health paths alone would leave the success rate (which does not count them) without data."""
    paths = [check.path for check in checks if 200 <= check.expect_status < 300]
    return paths + [version_path] if version_path else paths


@dataclass
class _Probes:
    """Every check of one iteration."""

    target_url: str
    environment: str
    checks: Sequence[SmokeCheck]
    settings: Analysis
    prometheus: PrometheusClient | None
    service: str
    image: str
    version_path: str | None
    build_id: str | None
    session: requests.Session

    def run(self, iteration: int, at: float) -> list[Observation]:
        observed = [self._smoke(check, iteration, at) for check in self.checks]
        if self.version_path and self.build_id:
            observed.append(self._version(iteration, at))
        observed += [self._metric(metric, iteration, at) for metric in self.settings.active_metrics]
        return observed

    def _smoke(self, check: SmokeCheck, iteration: int, at: float) -> Observation:
        # One attempt per iteration: the failure threshold, not retries, tolerates a blip.
        result = run_check(self.session, self.target_url, check.model_copy(update={"retries": 0}), retry_delay=0)
        answered = result.passed or not result.detail.startswith("no answer")  # smoke._judge's wording
        bound = f"status {check.expect_status}"
        if check.body_pattern is not None:
            bound += f", body ~ {check.body_pattern!r}"
        if check.max_latency_ms is not None:
            bound += f", <= {check.max_latency_ms:g} ms"
        value = round(result.seconds * 1000, 1) if answered else None
        return Observation(check.name, "smoke", iteration, at, result.passed, value, bound, result.detail)

    def _version(self, iteration: int, at: float) -> Observation:
        result = check_version(self.session, self.target_url, self.version_path or "", self.build_id or "",
                               retries=0, retry_delay=0)
        value = self.build_id if result.passed else None
        return Observation("version", "version", iteration, at, result.passed, value,
                           f"build_id == {self.build_id}", result.detail)

    def _metric(self, metric, iteration: int, at: float) -> Observation:
        query = metric.render(service=self.service, image=self.image, environment=self.environment,
                              interval=self.settings.query_range)
        if self.prometheus is None:
            raise PatchpipeError(f"metric {metric.name!r} needs a Prometheus client")
        try:
            value = self.prometheus.query(query, name=metric.name, service=self.service)
        except PrometheusError as exc:
            return Observation(metric.name, "metric", iteration, at, False, None, metric.bound, str(exc))
        problem = metric.judge(value)
        return Observation(metric.name, "metric", iteration, at, not problem, value, metric.bound, problem or "ok")


def _run(probes: _Probes, settings: Analysis, clock: Clock) -> AnalysisResult:
    started, started_at = clock.monotonic(), _iso(clock.time())
    observations: list[Observation] = []
    failed = 0
    failing: Observation | None = None
    due = started + settings.interval_seconds
    iteration = 0
    for iteration in range(1, settings.iterations + 1):
        wait = due - clock.monotonic()
        if wait > 0:
            clock.sleep(wait)
        observed = probes.run(iteration, round(clock.monotonic() - started, 3))
        observations += observed
        bad = [obs for obs in observed if not obs.passed]
        log.info("analysis of %s, iteration %d/%d: %s", probes.environment, iteration, settings.iterations,
                 "; ".join(f"{obs.check} {_shown(obs.value)} {'ok' if obs.passed else 'FAILED: ' + obs.detail}"
                           for obs in observed))
        if bad:
            failed += 1
            if failed >= settings.failure_threshold:
                failing = bad[0]
                break
        due = max(due + settings.interval_seconds, clock.monotonic())
    seconds = round(clock.monotonic() - started, 3)
    passed = failing is None
    reason = _reason(probes, settings, passed, iteration, failed, failing, observations, seconds)
    (log.info if passed else log.warning)("%s", reason)
    return AnalysisResult(
        environment=probes.environment, target_url=probes.target_url, passed=passed, reason=reason,
        iterations=settings.iterations, iterations_run=iteration, failed_iterations=failed,
        failure_threshold=settings.failure_threshold, interval_seconds=settings.interval_seconds,
        started_at=started_at, seconds=seconds, failing=failing, observations=tuple(observations))


def _reason(probes: _Probes, settings: Analysis, passed: bool, iteration: int, failed: int,
            failing: Observation | None, observations: list[Observation], seconds: float) -> str:
    where = f"analysis of {probes.environment} ({probes.target_url})"
    if failing is not None:
        others = [obs.check for obs in observations if obs.iteration == iteration and not obs.passed][1:]
        also = f" (also failing: {', '.join(others)})" if others else ""
        return (f"{where} failed at iteration {iteration}/{settings.iterations}: {failing.check} = "
                f"{_shown(failing.value)}, bound {failing.bound}: {failing.detail}{also}; {failed} failed "
                f"iteration(s) reached failure_threshold {settings.failure_threshold}: roll back")
    last = {obs.check: obs for obs in observations if obs.kind == "metric"}
    metrics = ", ".join(f"{name} {_shown(obs.value)} ({obs.bound})" for name, obs in last.items())
    return (f"{where} passed: {iteration} iterations over {seconds:g} s, {failed} failed "
            f"(failure_threshold {settings.failure_threshold})" + (f"; last {metrics}" if metrics else ""))


def _shown(value: float | str | None) -> str:
    if value is None:
        return "no value"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat(timespec="seconds")
