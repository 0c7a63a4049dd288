"""``patchpipe ledger history`` and ``patchpipe ledger report``: the patch history and a run's report
from a shell, no Airflow needed.

``add_ledger_history_commands(commands)`` registers both under ``patchpipe ledger``; ``patchpipe.cli.main``
turns a PatchpipeError (a bad date, an unknown run) into its message and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timedelta, timezone
from typing import Any

from patchpipe.errors import PatchpipeError

EXIT_OK = 0
DEFAULT_DAYS = 30

_HISTORY_EXAMPLES = """\
examples:
  patchpipe ledger history                                  the last 30 days, every image
  patchpipe ledger history --image demo-web --since 2026-10-01 --until 2026-11-01
  patchpipe ledger history --format json                    for a dashboard or a spreadsheet

Time to patch runs from the advisory's published date to the finish of the promotion that took the
finding out of production. The mean covers the findings fixed in [--since, --until).
"""

_REPORT_EXAMPLES = """\
examples:
  patchpipe ledger report                                   the latest run, as Markdown on stdout
  patchpipe ledger report --run RUN_ID --format html > run.html
  patchpipe ledger report --output reports/                 both files, named after the run id
"""


def add_ledger_history_commands(commands: argparse._SubParsersAction) -> None:
    history = commands.add_parser(
        "history", help="time to patch, mean time to remediate, open findings over time",
        description="Patch history from the ledger's findings snapshots: time to patch per vulnerability,\n"
        "the mean time to remediate over a period, and production's open findings by severity.",
        epilog=_HISTORY_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    history.add_argument("--image", metavar="NAME", help="one image (default: every image)")
    history.add_argument("--since", metavar="DATE", help=f"start of the period, e.g. 2026-11-01 (default: "
                         f"{DEFAULT_DAYS} days ago)")
    history.add_argument("--until", metavar="DATE", help="end of the period, exclusive (default: now)")
    history.add_argument("--format", choices=("table", "json"), default="table")
    _db_argument(history)
    history.set_defaults(command=_history, help_parser=history)

    report = commands.add_parser(
        "report", help="one run's report: found, patched, deployed, rolled back, and why",
        description="Print or write one run's report (Markdown or HTML) from the ledger.",
        epilog=_REPORT_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    report.add_argument("--run", metavar="RUN_ID", help="the Airflow run id (default: the latest run)")
    report.add_argument("--format", choices=("markdown", "html"), default="markdown",
                        help="what to print (without --output)")
    report.add_argument("--output", metavar="DIR", help="write RUN_ID.md and RUN_ID.html into DIR instead")
    _db_argument(report)
    report.set_defaults(command=_report, help_parser=report)


def _db_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", metavar="URL", help="SQLAlchemy URL of the ledger (default: $PATCHPIPE_DB, "
                        "else $AIRFLOW_HOME/patchpipe.db)")


def _ledger(args: argparse.Namespace):
    from patchpipe import db
    from patchpipe.ledger.store import Ledger

    engine = db.make_engine(args.db or db.database_url())
    db.create_schema(engine)
    return Ledger(engine)


def _history(args: argparse.Namespace) -> int:
    from patchpipe.ledger import history

    until = _date(args.until, "--until") if args.until else datetime.now(timezone.utc)
    since = _date(args.since, "--since") if args.since else until - timedelta(days=DEFAULT_DAYS)
    if since >= until:
        raise PatchpipeError(f"--since {since.isoformat()} is not before --until {until.isoformat()}")
    ledger = _ledger(args)
    patch_times = [p for p in history.time_to_patch(ledger, image=args.image)
                   if p.is_open or (p.fixed_at is not None and since <= p.fixed_at < until)]
    remediation = history.mean_time_to_remediate(ledger, since, until, image=args.image)
    trend = history.open_findings_over_time(ledger, image=args.image, since=since, until=until)
    if args.format == "json":
        json.dump(_history_json(patch_times, remediation, trend), sys.stdout, indent=2)
        print()
    else:
        print(_history_table(patch_times, remediation, trend, until))
    return EXIT_OK


def _report(args: argparse.Namespace) -> int:
    from patchpipe.reports import build_report, render_html, render_markdown, write_report

    ledger = _ledger(args)
    run = ledger.get_run(args.run) if args.run else ledger.latest_run()
    if run is None:
        raise PatchpipeError(f"no patch run {args.run or 'at all'} in the ledger")
    if args.output:
        files = write_report(ledger, run.run_id, args.output)
        print(files.markdown)
        print(files.html)
        return EXIT_OK
    report = build_report(ledger, run.run_id)
    sys.stdout.write(render_html(report) if args.format == "html" else render_markdown(report))
    return EXIT_OK


def _date(text: str, option: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise PatchpipeError(f"{option} {text!r} is not a date; expected e.g. 2026-11-01 or 2026-11-01T02:00") from None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _history_table(patch_times, remediation, trend, now: datetime) -> str:
    from patchpipe.reports.wording import duration, plural, timestamp

    lines = ["time to patch (advisory published -> fixed in production)"]
    rows = [("IMAGE", "VULNERABILITY", "SEVERITY", "PUBLISHED", "FIXED", "TIME TO PATCH", "RUN")]
    for p in patch_times:
        state = timestamp(p.fixed_at) if p.fixed_at else f"open {duration(now - (p.published or p.first_seen))}"
        rows.append((p.image, p.vulnerability_id + (" (KEV)" if p.kev else ""), p.severity.value,
                     timestamp(p.published) if p.published else "-", state, duration(p.time_to_patch),
                     p.fixed_by_run or "-"))
    lines += _columns(rows) if len(rows) > 1 else ["  nothing fixed in the period and nothing open"]
    mean = duration(remediation.mean) if remediation.mean is not None else "-"
    lines += ["", f"mean time to remediate ({timestamp(remediation.since)} to {timestamp(remediation.until)}): "
                  f"{mean} over {plural(remediation.count, 'fixed finding')}"]
    if remediation.without_published:
        lines.append(f"  {remediation.without_published} of them without a published date, left out of the mean")
    if remediation.mean_from_detection is not None:
        lines.append(f"  from first seen in production: {duration(remediation.mean_from_detection)}")
    lines += ["", "open findings in production"]
    rows = [("IMAGE", "RECORDED", "RUN", "CRITICAL", "HIGH", "MEDIUM", "LOW", "NEGLIGIBLE", "UNKNOWN", "TOTAL")]
    for point in trend:
        rows.append((point.image, timestamp(point.recorded_at), point.run_id,
                     *(str(n) for n in point.by_severity.values()), str(point.total)))
    lines += _columns(rows) if len(rows) > 1 else ["  no production snapshots in the period"]
    return "\n".join(lines)


def _columns(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]


def _history_json(patch_times, remediation, trend) -> dict[str, Any]:
    def when(value: datetime | None) -> str | None:
        return None if value is None else value.isoformat()

    def seconds(value: timedelta | None) -> float | None:
        return None if value is None else value.total_seconds()

    return {
        "time_to_patch": [
            {"image": p.image, "id": p.vulnerability_id, "aliases": list(p.aliases), "packages": list(p.packages),
             "severity": p.severity.value, "kev": p.kev, "published": when(p.published),
             "first_seen": when(p.first_seen), "fixed_at": when(p.fixed_at), "fixed_by_run": p.fixed_by_run,
             "fixed_digest": p.fixed_digest, "time_to_patch_seconds": seconds(p.time_to_patch)}
            for p in patch_times
        ],
        "mean_time_to_remediate": {
            "since": when(remediation.since), "until": when(remediation.until), "fixes": remediation.count,
            "mean_seconds": seconds(remediation.mean),
            "mean_from_detection_seconds": seconds(remediation.mean_from_detection),
            "without_published": remediation.without_published,
        },
        "open_findings": [
            {"image": p.image, "run_id": p.run_id, "digest": p.digest, "recorded_at": when(p.recorded_at),
             "by_severity": {s.value: n for s, n in p.by_severity.items()}, "total": p.total}
            for p in trend
        ],
    }
