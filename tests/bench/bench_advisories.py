#!/usr/bin/env python3
"""bench-advisories: ingest a 200,000-record OSV archive through the real sync, then re-sync it unchanged.

1. ``osv_corpus.write_corpus`` makes ``all.zip`` from the real OSV samples (every record different)
   in a temporary directory, served by the tests' local HTTP server with ETags.
2. A child process (so its memory high-water mark is the ingest's alone) runs ``sync`` for one
   feed on that URL into a fresh store (SQLite by default, ``--db`` for another): download, parse
   and store in one transaction. It then syncs again: the unchanged feed is one 304. A feed this
   large is parsed in a worker process of the sync's own while the ingest process writes: the
   peak memory is the sum of both processes' peaks.
3. A second child parses the same archive in one process without storing it, for comparison.

Prints the figures with ratios to the targets (a MISS is reported, never raised) and writes them
to bench/results.json under "advisories". Progress goes to stderr, the report to stdout.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for support.http_server

from _results import record_results  # noqa: E402
from osv_corpus import write_corpus  # noqa: E402
from support.http_server import LocalHTTPServer  # noqa: E402

RATE_TARGET = 20_000  # records/s, at least
MEMORY_TARGET_MB = 300  # peak RSS of the ingesting process plus its parsing worker, at most
RESYNC_TARGET_S = 1.0  # re-sync of the unchanged feed, under
FEED = "osv-bench"
ARCHIVE = "osv/Bench/all.zip"

_started = time.monotonic()


def progress(message: str) -> None:
    print(f"[bench-advisories {time.monotonic() - _started:6.1f}s] {message}", file=sys.stderr, flush=True)


# --- the child processes --------------------------------------------------------------------------


class ChildrenPeakMemory(threading.Thread):
    """The highest peak RSS (VmHWM) of this process's children, read every ``interval`` seconds.

    Not getrusage(RUSAGE_CHILDREN): a child's ru_maxrss starts at its parent's RSS at the fork.
    Only plain /proc reads: this runs beside the ingest it measures.
    """

    def __init__(self, interval: float = 0.2):
        super().__init__(daemon=True)
        self.interval = interval
        self.peak_kb = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            for children in Path("/proc/self/task").glob("*/children"):
                for pid in children.read_text().split():
                    try:
                        status = Path(f"/proc/{pid}/status").read_text()
                    except OSError:  # it has just exited
                        continue
                    peak = next((line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")), "0")
                    self.peak_kb = max(self.peak_kb, int(peak))

    def stop(self) -> float:
        """Stop sampling; the peak in MB."""
        self.stopped.set()
        self.join()
        return self.peak_kb / 1024


def ingest_child(url: str, db_url: str, workdir: Path) -> dict:
    from patchpipe.advisories.settings import Feed, SyncSettings
    from patchpipe.advisories.sync import sync
    from patchpipe.db import create_schema, make_engine

    engine = make_engine(db_url)
    create_schema(engine)
    settings = SyncSettings(feeds=(Feed(FEED, "osv", url),), download_dir=workdir)
    workers = ChildrenPeakMemory()
    workers.start()
    started = time.perf_counter()
    first = sync(engine, settings=settings)
    ingest_seconds = time.perf_counter() - started
    worker_peak_mb = workers.stop()
    ingest_peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux
    started = time.perf_counter()
    second = sync(engine, settings=settings)
    resync_seconds = time.perf_counter() - started
    [ingested], [resynced] = first.results, second.results
    changes = ingested.changes
    return {
        "ingest_seconds": ingest_seconds,
        "ingest_outcome": ingested.outcome,
        "ingest_error": ingested.error,
        "advisories": changes.advisories if changes else 0,
        "affected": changes.affected if changes else 0,
        "skipped": changes.skipped if changes else 0,
        "peak_rss_mb": ingest_peak_mb + worker_peak_mb,
        "ingest_process_peak_rss_mb": ingest_peak_mb,
        "worker_peak_rss_mb": worker_peak_mb,
        "resync_seconds": resync_seconds,
        "resync_outcome": resynced.outcome,
    }


def parse_child(archive: Path) -> dict:
    from patchpipe.advisories.sources import SOURCES

    started = time.perf_counter()
    with archive.open("rb") as payload:
        records = sum(1 for _ in SOURCES["osv"].parse(payload, str(archive)))
    return {"parse_seconds": time.perf_counter() - started, "records": records}


def in_child(*args: str) -> dict:
    result = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"child {' '.join(args[:1])} failed ({result.returncode}):\n{result.stderr}")
    return json.loads(result.stdout)


# --- the benchmark --------------------------------------------------------------------------------


def verdict(passed: bool) -> str:
    return "PASS" if passed else "MISS"


def run(records: int, db_url: str | None) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-advisories-") as tmp:
        workdir = Path(tmp)
        archive = workdir / "mirror" / ARCHIVE
        progress(f"generating {records:,} OSV records from the real samples into {archive}")
        corpus = write_corpus(archive, records)
        progress(f"{corpus.records:,} records, {corpus.affected:,} affected entries, {corpus.size / 2**20:.1f} MiB")
        database = db_url or f"sqlite:///{workdir / 'bench.db'}"
        with LocalHTTPServer(workdir / "mirror", etag=True) as server:
            progress(f"ingest through the sync in a child process: {server.url(ARCHIVE)} -> {_shown(database)}")
            ingest = in_child("--ingest-child", server.url(ARCHIVE), database, str(workdir))
            resync_requests = [(r.method, r.path, "If-None-Match" in r.headers) for r in server.requests[1:]]
        progress("parse only, in a child process")
        parse = in_child("--parse-child", str(archive))

    if ingest["ingest_outcome"] != "updated" or ingest["advisories"] != records:
        raise RuntimeError(f"the ingest did not store the corpus: {ingest}")
    rate = ingest["advisories"] / ingest["ingest_seconds"]
    parse_rate = parse["records"] / parse["parse_seconds"]
    one_304 = ingest["resync_outcome"] == "unchanged" and resync_requests == [("GET", ARCHIVE, True)]
    targets = {
        "ingest_rate": {"target": f">= {RATE_TARGET}/s", "measured": round(rate), "ratio": rate / RATE_TARGET,
                        "pass": rate >= RATE_TARGET},
        "peak_memory": {"target": f"<= {MEMORY_TARGET_MB} MB", "measured": round(ingest["peak_rss_mb"], 1),
                        "ratio": ingest["peak_rss_mb"] / MEMORY_TARGET_MB,
                        "pass": ingest["peak_rss_mb"] <= MEMORY_TARGET_MB},
        "resync_unchanged": {"target": f"< {RESYNC_TARGET_S} s", "measured": round(ingest["resync_seconds"], 4),
                             "ratio": ingest["resync_seconds"] / RESYNC_TARGET_S,
                             "pass": ingest["resync_seconds"] < RESYNC_TARGET_S and one_304},
    }

    print(f"\nbench-advisories: OSV archive of {corpus.records:,} records ({corpus.affected:,} affected entries, "
          f"{corpus.size / 2**20:.1f} MiB zip) into {_shown(database).split(':')[0]}")
    print(f"\n  {'ingest (download + parse + store)':<36}{ingest['ingest_seconds']:>8.2f} s{rate:>12,.0f} records/s")
    print(f"  {'  parse alone, for comparison':<36}{parse['parse_seconds']:>8.2f} s{parse_rate:>12,.0f} records/s")
    print(f"  {'peak memory of the ingest (RSS)':<36}{ingest['peak_rss_mb']:>8.0f} MB   "
          f"ingest process {ingest['ingest_process_peak_rss_mb']:.0f} + parsing worker "
          f"{ingest['worker_peak_rss_mb']:.0f}")
    print(f"  {'re-sync of the unchanged feed':<36}{ingest['resync_seconds']:>8.3f} s   "
          f"{'one conditional GET, 304' if one_304 else f'requests: {resync_requests}'}")
    print("\ntargets:")
    for label, key in (("ingest rate >= 20,000 records/s", "ingest_rate"),
                       ("peak memory <= 300 MB", "peak_memory"),
                       ("re-sync of the unchanged feed < 1 s", "resync_unchanged")):
        target = targets[key]
        print(f"  {label:<40} {target['measured']:>10}  {target['ratio']:>6.2f} x target  {verdict(target['pass'])}")
    return {
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "database": _shown(database).split(":")[0],
        "records": corpus.records, "affected": corpus.affected, "archive_bytes": corpus.size,
        "ingest_seconds": ingest["ingest_seconds"], "records_per_second": rate,
        "parse_seconds": parse["parse_seconds"], "parse_records_per_second": parse_rate,
        "peak_rss_mb": ingest["peak_rss_mb"], "ingest_process_peak_rss_mb": ingest["ingest_process_peak_rss_mb"],
        "worker_peak_rss_mb": ingest["worker_peak_rss_mb"], "resync_seconds": ingest["resync_seconds"],
        "resync_requests": len(resync_requests), "targets": targets,
    }


def _shown(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench_advisories.py",
        description="Ingest a generated OSV archive through the advisory sync and re-sync it unchanged; print "
                    "the rate, peak memory and re-sync time against their targets; write bench/results.json.",
    )
    parser.add_argument("--records", type=int, default=200_000, help="records in the generated archive")
    parser.add_argument("--db", metavar="URL", help="SQLAlchemy URL of an empty store (default: a new SQLite file)")
    parser.add_argument("--ingest-child", nargs=3, metavar=("URL", "DB", "WORKDIR"), help=argparse.SUPPRESS)
    parser.add_argument("--parse-child", metavar="ARCHIVE", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.ingest_child:
        url, db_url, workdir = args.ingest_child
        print(json.dumps(ingest_child(url, db_url, Path(workdir))))
        return 0
    if args.parse_child:
        print(json.dumps(parse_child(Path(args.parse_child))))
        return 0
    try:
        figures = run(args.records, args.db)
    except Exception as exc:  # noqa: BLE001 - a benchmark reports its failure and exits 2
        print(f"bench-advisories: error: {exc}", file=sys.stderr)
        return 2
    print(f"\nfigures written to {record_results('advisories', figures)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
