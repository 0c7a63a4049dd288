"""``patchpipe scan (IMAGE | --rootfs DIR) [--local] [--format json|table] [--db URL]``: an image's findings.

``add_scan_command(groups)`` registers the command on the ``patchpipe`` parser; ``patchpipe.cli.main``
turns a PatchpipeError into its message and exit status 2. The image is read as ``patchpipe sbom``
reads it (``cli_sbom.add_target_arguments`` / ``read_target``) and matched against the advisory store
(``patchpipe.scan.match``); findings are printed most urgent first (``patchpipe.scan.priority``).
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from patchpipe.cli_sbom import add_target_arguments, read_target

if TYPE_CHECKING:  # imported when the command runs, so `patchpipe --help` stays quick
    from patchpipe.packages.inventory import Inventory
    from patchpipe.scan.findings import Finding

EXIT_OK = 0
FORMATS = ("json", "table")
_DB_HELP = "SQLAlchemy URL of the advisory store (default: $PATCHPIPE_DB, else $AIRFLOW_HOME/patchpipe.db)"

_EXAMPLES = """\
examples:
  patchpipe scan 127.0.0.1:5000/demo/web:1.0                 findings as JSON, most urgent first
  patchpipe scan --local demo/web:1.0 --format table         from the local Docker Engine, as a table
  patchpipe scan --rootfs /srv/chroots/bookworm --db sqlite:////var/lib/patchpipe/advisories.db

Findings come from the advisory store: fill it first with `patchpipe advisories sync`.
Order: known exploited (KEV), then fixable, then severity, then EPSS, then id.
"""


def add_scan_command(groups: argparse._SubParsersAction) -> None:
    scan = groups.add_parser(
        "scan",
        help="list the vulnerabilities of an image's installed packages",
        description="Read the installed packages of an image or root filesystem, without running it, and\n"
        "match them against the advisory store: one finding per vulnerability and binary package.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_target_arguments(scan)
    scan.add_argument("--format", choices=FORMATS, default="json", help="output format (default: json)")
    scan.add_argument("--db", metavar="URL", help=_DB_HELP)
    scan.set_defaults(command=_scan, help_parser=scan)


def _scan(args: argparse.Namespace) -> int:
    from patchpipe import db
    from patchpipe.scan.match import match
    from patchpipe.scan.priority import prioritized

    _, inventory = read_target(args)
    engine = db.make_engine(args.db or db.database_url())
    try:
        db.create_schema(engine)
        findings = prioritized(match(engine, inventory))
    finally:
        engine.dispose()
    print(format_json(inventory, findings) if args.format == "json" else format_table(inventory, findings))
    return EXIT_OK


def format_json(inventory: Inventory, findings: list[Finding]) -> str:
    os = inventory.os
    document = {
        "os": {"family": os.id, "version": os.version_id or os.version_codename},
        "packages": len(inventory.packages),
        "findings": [finding.to_dict() for finding in findings],
    }
    return json.dumps(document, indent=2)


def format_table(inventory: Inventory, findings: list[Finding]) -> str:
    os = inventory.os
    system = " ".join(filter(None, [os.id, os.version_id, f"({os.version_codename})" if os.version_codename else None]))
    count = len(findings)
    heading = f"{system}: {len(inventory.packages)} packages, {count} finding{'' if count == 1 else 's'}"
    rows = [("ID", "PACKAGE", "INSTALLED", "FIXED", "STATUS", "SEVERITY", "KEV", "EPSS")]
    for f in findings:
        rows.append((f.id, f.package, f.installed, f.fixed or "-", f.status.value, f.severity.value,
                     "yes" if f.kev else "-", "-" if f.epss is None else f"{f.epss:.5f}"))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    lines = [heading] + ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1]
                         for row in rows]
    return "\n".join(lines)
