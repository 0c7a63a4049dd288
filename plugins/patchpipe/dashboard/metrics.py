"""Prometheus metrics of the fleet, read from the ledger at every scrape.

A custom collector rather than gauges updated by the DAG: the ledger is the record, so every scrape
reads it (``LedgerSnapshot``) and the exported values are the ledger's, whichever process wrote it,
and cannot drift from it. The collector lives in its own registry, so Airflow's or the process's
default metrics never mix in.

What is a counter and what a gauge: rollbacks are events that only accumulate, so they are counters.
Image results per status are a gauge, because a cleared and rerun run overwrites its row (``failed``
becomes ``promoted``), and a counter that goes down reads as a reset to Prometheus.

Labels are fleet image names, severities and statuses: a bounded set, whatever the ledger's size.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from sqlalchemy import Engine

from patchpipe.dashboard.findings import ImageFindings
from patchpipe.dashboard.fleet import last_patched
from patchpipe.dashboard.rollbacks import rollbacks
from patchpipe.dashboard.snapshot import LedgerSnapshot, read_snapshot
from patchpipe.db import utc_now
from patchpipe.ledger.models import ImageStatus, RunStatus

FindingsSource = Callable[[Engine, LedgerSnapshot], dict[str, ImageFindings]]


class LedgerCollector:
    """A ``prometheus_client`` collector over one patchpipe database."""

    def __init__(self, engine: Engine, findings_source: FindingsSource, clock: Callable[[], datetime] = utc_now):
        self.engine = engine
        self.findings_source = findings_source
        self.clock = clock

    def describe(self) -> list[Metric]:
        return []  # nothing to read at registration; the names are checked by the tests instead

    def collect(self) -> Iterator[Metric]:
        snapshot = read_snapshot(self.engine)
        yield from ledger_metrics(snapshot, self.findings_source(self.engine, snapshot), self.clock())


def ledger_metrics(snapshot: LedgerSnapshot, findings: dict[str, ImageFindings], now: datetime) -> Iterator[Metric]:
    """Every metric family, from one snapshot and the findings of its images."""
    open_findings = GaugeMetricFamily(
        "patchpipe_open_findings", "Open findings of the image's production digest, by severity "
        "(images without a findings snapshot have no series)", labels=["image", "severity"])
    fixable = GaugeMetricFamily(
        "patchpipe_unpatched_fixable_findings", "Open findings of the image's production digest that have a "
        "fixed version (status fixed)", labels=["image"])
    oldest = GaugeMetricFamily(
        "patchpipe_oldest_unpatched_fixable_finding_age_seconds", "How long the oldest unpatched fixable "
        "finding has been fixable in the production digest (0 when there is none)", labels=["image"])
    scanned = GaugeMetricFamily(
        "patchpipe_findings_scanned_timestamp_seconds", "When the findings snapshot the open findings come "
        "from was recorded (the run's assess, or the scan of a candidate it promoted)", labels=["image"])
    for image, found in sorted(findings.items()):
        for severity, count in found.counts().items():
            open_findings.add_metric([image, severity], count)
        fixable.add_metric([image], sum(f.fixable for f in found.findings))
        since = found.oldest_unpatched_fixable()
        oldest.add_metric([image], max(0.0, (now - since).total_seconds()) if since else 0.0)
        scanned.add_metric([image], found.as_of.timestamp())
    yield from (open_findings, fixable, oldest, scanned)

    results = GaugeMetricFamily(
        "patchpipe_image_results", "Image results in the ledger by status: one per image per run "
        "(a rerun overwrites its run's row, so a status can go down)", labels=["image", "status"])
    last = GaugeMetricFamily(
        "patchpipe_image_last_result", "1 for the status of the image's latest result, 0 for the others",
        labels=["image", "status"])
    patched = GaugeMetricFamily(
        "patchpipe_last_patched_timestamp_seconds", "When production last got a patched digest "
        "(images never patched have no series)", labels=["image"])
    for image in snapshot.images:
        counted = Counter(r.status for r in snapshot.results[image])
        latest = snapshot.results[image][0].status
        for status in ImageStatus:
            results.add_metric([image, status.value], counted.get(status, 0))
            last.add_metric([image, status.value], 1 if status is latest else 0)
        when = last_patched(snapshot, image)
        if when is not None:
            patched.add_metric([image], when.timestamp())
    yield from (results, last, patched)

    runs = GaugeMetricFamily("patchpipe_runs", "Patch runs in the ledger, by status", labels=["status"])
    counted_runs = Counter(run.status for run in snapshot.runs.values())
    for status in RunStatus:
        runs.add_metric([status.value], counted_runs.get(status, 0))
    yield runs

    done = CounterMetricFamily("patchpipe_rollbacks", "Rollbacks patchpipe performed, by environment",
                               labels=["image", "environment"])
    failed = CounterMetricFamily("patchpipe_rollback_failures", "Rollback stages that failed: the environment "
                                 "may still run the bad candidate", labels=["image", "environment"])
    recorded = rollbacks(snapshot)
    counted_rollbacks = Counter((r.image, r.environment, r.succeeded) for r in recorded)
    for image in sorted(set(snapshot.images) | {r.image for r in recorded}):
        for environment in ("staging", "production"):
            done.add_metric([image, environment], counted_rollbacks.get((image, environment, True), 0))
            failed.add_metric([image, environment], counted_rollbacks.get((image, environment, False), 0))
    yield from (done, failed)


def metrics_text(engine: Engine, findings_source: FindingsSource,
                 clock: Callable[[], datetime] = utc_now) -> bytes:
    """The text exposition format (``text/plain; version=0.0.4``) of the ledger's metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LedgerCollector(engine, findings_source, clock))
    return generate_latest(registry)
