"""``patchpipe advisories ...``: sync, import, show and status of the advisory store.

``add_advisories_commands(groups)`` registers the group on the ``patchpipe`` parser; each command
is an ``_advisories_<command>(args) -> int`` function, and ``patchpipe.cli.main`` turns a
PatchpipeError into its message and exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the commands import the store lazily, so `patchpipe --help` stays quick
    from sqlalchemy import Engine

    from patchpipe.advisories.store import FeedChanges
    from patchpipe.advisories.sync import SyncReport

EXIT_OK = 0
EXIT_ATTENTION = 1  # sync: a feed is stale; status: a feed is stale, too old or never synced; show: unknown id

FORMATS = ("osv", "debian-tracker", "alpine-secdb", "kev", "epss")

_DB_HELP = "SQLAlchemy URL of the store (default: $PATCHPIPE_DB, else $AIRFLOW_HOME/patchpipe.db)"

_GROUP_EXAMPLES = """\
examples:
  patchpipe advisories sync                       fetch every configured feed (304s when unchanged)
  patchpipe advisories sync --source kev --source epss
  patchpipe advisories import --format osv all.zip
  patchpipe advisories show CVE-2024-8176         the merged view: every feed, KEV and EPSS
  patchpipe advisories status                     each feed's freshness and counts

Feed URLs are configuration (PATCHPIPE_OSV_BASE, PATCHPIPE_KEV_URL, ...): see
patchpipe/advisories/settings.py. An air-gapped site points them at its own mirror, or imports files.
"""


def add_advisories_commands(groups: argparse._SubParsersAction) -> None:
    advisories = groups.add_parser(
        "advisories",
        help="fetch, import and look up security advisories",
        description="The advisory store: OSV, the Debian Security Tracker, Alpine secdb, CISA KEV and EPSS,\n"
        "one feed at a time, each replaced whole in one transaction.",
        epilog=_GROUP_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    advisories.set_defaults(help_parser=advisories)
    commands = advisories.add_subparsers(title="commands", metavar="COMMAND")

    sync = commands.add_parser(
        "sync",
        help="fetch the configured feeds into the store",
        description="Fetch each feed with a conditional GET (an unchanged feed costs one 304), parse it and\n"
        "replace its data in one transaction. A feed that is down keeps its last good data.\n\n"
        "Exit status: 0 every feed is current; 1 a feed failed and keeps older data (a warning);\n"
        "2 a feed's data is older than PATCHPIPE_ADVISORY_MAX_AGE_HOURS (default 48) or missing.",
        epilog="examples:\n  patchpipe advisories sync\n  patchpipe advisories sync --source osv-debian --source kev\n"
        "  PATCHPIPE_OSV_ECOSYSTEMS=Debian patchpipe advisories sync",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sync.add_argument("--source", dest="sources", action="append", metavar="NAME",
                      help="a feed name, e.g. osv-debian, debian-tracker, alpine-secdb-v3.20-main, kev, epss "
                      "(repeat for several; default: every configured feed)")
    sync.add_argument("--db", metavar="URL", help=_DB_HELP)
    sync.set_defaults(command=_advisories_sync)

    import_ = commands.add_parser(
        "import",
        help="load advisory files into the store (no network)",
        description="Parse files and replace one feed's data with them, all or nothing. PATH is a file, a\n"
        "directory (its files of that format, recursively) or a zip archive. Records that fail\n"
        "validation are skipped and listed on stderr.",
        epilog="examples:\n"
        "  patchpipe advisories import --format osv Debian-all.zip --feed osv-debian\n"
        "  patchpipe advisories import --format osv osv-records/\n"
        "  patchpipe advisories import --format debian-tracker tracker.json\n"
        "  patchpipe advisories import --format alpine-secdb v3.20-main.json --feed alpine-secdb-v3.20-main\n"
        "  patchpipe advisories import --format epss epss_scores-current.csv.gz",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    import_.add_argument("--format", required=True, choices=FORMATS, help="the files' format")
    import_.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    import_.add_argument("--feed", metavar="NAME",
                         help="the feed whose data the files replace (default: the format, e.g. debian-tracker); "
                         "name a synced feed (osv-debian) to stand in for it")
    import_.add_argument("--db", metavar="URL", help=_DB_HELP)
    import_.set_defaults(command=_advisories_import)

    show = commands.add_parser(
        "show",
        help="everything known about one vulnerability",
        description="Print every feed's advisory linked to ID by id or alias (a CVE shows the DSA, DLA and\n"
        "ALPINE advisories that name it), with the affected packages, KEV and EPSS.\n"
        "Exit status 1 when the store knows nothing about ID.",
        epilog="examples:\n  patchpipe advisories show CVE-2014-3616\n  patchpipe advisories show DSA-3029-1",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    show.add_argument("id", metavar="ID", help="a CVE, DSA, DLA, ALPINE or GHSA id")
    show.add_argument("--db", metavar="URL", help=_DB_HELP)
    show.set_defaults(command=_advisories_show)

    status = commands.add_parser(
        "status",
        help="each feed's freshness and record counts",
        description="One line per feed: when it was last synced, how old its data is, whether the last\n"
        "attempt failed, and what it holds. Exit status 1 when a feed is stale, too old or never synced.",
        epilog="example:\n  patchpipe advisories status --db postgresql+psycopg://patchpipe@db/patchpipe",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    status.add_argument("--db", metavar="URL", help=_DB_HELP)
    status.set_defaults(command=_advisories_status)


def _advisories_sync(args: argparse.Namespace) -> int:
    from patchpipe.advisories.settings import SyncSettings
    from patchpipe.advisories.sync import AdvisoriesTooOldError, sync

    engine = _engine(args.db)
    try:
        with _warnings_on_stderr():
            report = sync(engine, args.sources, SyncSettings.from_env())
    except AdvisoriesTooOldError as error:
        _print_report(error.report)
        raise
    _print_report(report)  # stale feeds were logged as warnings (on stderr) by the sync
    return EXIT_ATTENTION if report.stale else EXIT_OK


def _print_report(report: SyncReport) -> None:
    from patchpipe.advisories.sync import FAILED, UNCHANGED

    width = max((len(result.feed) for result in report.results), default=4)
    for result in report.results:
        if result.outcome == UNCHANGED:
            detail = "not modified"
        elif result.outcome == FAILED:
            detail = f"keeping data {_age(result.age)}: {result.error}"
        else:
            detail = _changes(result.changes)
        print(f"{result.feed:<{width}}  {result.outcome:<9}  {detail}")


def _advisories_import(args: argparse.Namespace) -> int:
    from patchpipe.advisories.sync import import_files

    engine = _engine(args.db)
    with _warnings_on_stderr():
        changes = import_files(engine, args.format, args.paths, feed=args.feed)
    print(f"{args.feed or args.format}: {_changes(changes)}")
    return EXIT_OK


def _advisories_show(args: argparse.Namespace) -> int:
    from patchpipe.advisories.store import advisory

    engine = _engine(args.db)
    view = advisory(engine, args.id)
    if view is None:
        print(f"patchpipe: {args.id}: not in the advisory store ({engine.url.render_as_string()})", file=sys.stderr)
        return EXIT_ATTENTION
    cvss = f"{view.cvss_score:.1f}" if view.cvss_score is not None else "-"
    print(f"{view.id}  severity {view.severity.value}, CVSS {cvss}, "
          f"{'KNOWN EXPLOITED' if view.known_exploited else 'not in KEV'}")
    if view.aliases:
        print(f"also known as: {', '.join(view.aliases)}")
    for entry in view.kev:
        due = f", due {entry.due_date}" if entry.due_date else ""
        ransomware = ", used in ransomware" if entry.known_ransomware else ""
        print(f"KEV: {entry.cve} listed {entry.date_added}{due} ({entry.vendor} {entry.product}{ransomware})")
    for score in view.epss:
        scored = f" on {score.scored_on}" if score.scored_on else ""
        print(f"EPSS: {score.cve} {score.score:.5f} (percentile {score.percentile:.5f}){scored}")
    for entry in view.advisories:
        record = entry.advisory
        dates = ", ".join(
            f"{label} {when:%Y-%m-%d}" for label, when in (("published", record.published), ("modified", record.modified))
            if when is not None
        )
        print()
        print(f"{record.id}  [{entry.feed}]  severity {record.severity.value}" + (f", {dates}" if dates else ""))
        if record.aliases:
            print(f"  aliases: {', '.join(record.aliases)}")
        if record.summary:
            print(f"  {_first_line(record.summary)}")
        for package in record.affected:
            fixed = f" {package.fixed_version}" if package.fixed_version else ""
            events = " ".join(f"{event.kind}={event.version}" for event in package.events)
            rating = f" ({package.severity.value})" if package.severity.value != "unknown" else ""
            print(f"  {package.ecosystem}/{package.release} {package.package}: {package.status.value}{fixed}{rating}"
                  + (f"  [{events}]" if events else ""))
    return EXIT_OK


def _advisories_status(args: argparse.Namespace) -> int:
    from patchpipe.advisories.settings import SyncSettings
    from patchpipe.advisories.store import source_states
    from patchpipe.db import utc_now

    engine = _engine(args.db)
    settings = SyncSettings.from_env()
    states = {state.name: state for state in source_states(engine)}
    names = list(dict.fromkeys([*(feed.name for feed in settings.feeds), *states]))
    now = utc_now()
    attention = False
    rows = [("FEED", "LAST SUCCESS", "AGE", "STATE", "ADVISORIES", "AFFECTED", "KEV", "EPSS", "SKIPPED")]
    for name in names:
        state = states.get(name)
        if state is None or state.last_success is None:
            attention = True
            error = f": {state.last_error}" if state is not None and state.last_error else ""
            rows.append((name, "never", "-", f"NEVER SYNCED{error}", "-", "-", "-", "-", "-"))
            continue
        age = state.age(now)
        assert age is not None
        problems = [f"TOO OLD (max {settings.max_age.total_seconds() / 3600:g} h)"] if age > settings.max_age else []
        if state.stale:
            problems.append(f"STALE: {state.last_error}")
        word = "; ".join(problems) or "fresh"
        attention = attention or bool(problems)
        rows.append((name, f"{state.last_success:%Y-%m-%d %H:%M} UTC", _hours(age), word, str(state.advisories),
                     str(state.affected), str(state.kev), str(state.epss), str(state.skipped)))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])
    return EXIT_ATTENTION if attention else EXIT_OK


def _engine(url: str | None) -> Engine:
    from patchpipe import db

    engine = db.make_engine(url or db.database_url())
    db.create_schema(engine)
    return engine


@contextmanager
def _warnings_on_stderr() -> Iterator[None]:
    """Retries, skipped records and stale feeds are logged as warnings: show them while the command runs."""
    logger = logging.getLogger("patchpipe")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("patchpipe: %(message)s"))
    level = logger.level
    logger.addHandler(handler)
    if level == logging.NOTSET or level > logging.WARNING:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _changes(changes: FeedChanges) -> str:
    parts = []
    if changes.advisories or changes.removed_ids or not (changes.kev or changes.epss):
        parts.append(f"{changes.advisories} advisories ({len(changes.new_ids)} new, {len(changes.updated_ids)} updated, "
                     f"{len(changes.removed_ids)} removed)")
    if changes.kev:
        parts.append(f"{changes.kev} KEV entries ({len(changes.new_kev)} new)")
    if changes.epss:
        parts.append(f"{changes.epss} EPSS scores")
    return ", ".join(parts) + f", {changes.skipped} skipped"


def _age(age: timedelta | None) -> str:
    return "never fetched" if age is None else f"{_hours(age)} old"


def _hours(age: timedelta) -> str:
    return f"{age.total_seconds() / 3600:.1f} h"


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= 160 else line[:157] + "..."

