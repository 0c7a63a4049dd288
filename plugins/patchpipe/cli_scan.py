"""``patchpipe scan (IMAGE | --rootfs DIR | --trivy-report FILE) [--local] [--format json|table|plan]
[--db URL] [--policy FILE]``: an image's findings, and whether a policy lets them through.

With ``--trivy-report FILE`` the findings come from a Trivy JSON report (``patchpipe.scan.trivy``)
instead of patchpipe's own match, printed the same way (KEV and EPSS added from the store);
``--format plan`` prints that report's Copacetic-style patch plan instead.

With ``--policy FILE`` the findings also go through the policy gate (``patchpipe.scan.policy``), with
the OpenVEX documents the policy lists, and the exit status says whether it passed.

``add_scan_command(groups)`` registers the command on the ``patchpipe`` parser; ``patchpipe.cli.main``
turns a PatchpipeError into its message and exit status 2. The image is read as ``patchpipe sbom``
reads it (``cli_sbom.add_target_arguments`` / ``read_target``) and matched against the advisory store
(``patchpipe.scan.match``); findings are printed most urgent first (``patchpipe.scan.priority``).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from typing import TYPE_CHECKING

from patchpipe.cli_sbom import add_target_arguments, read_target

if TYPE_CHECKING:  # imported when the command runs, so `patchpipe --help` stays quick
    from patchpipe.fleet.models import Policy
    from patchpipe.packages.inventory import Inventory
    from patchpipe.scan.findings import Finding
    from patchpipe.scan.policy import GateResult
    from patchpipe.scan.sbom import SbomSubject
    from patchpipe.scan.trivy import TrivyReport
    from patchpipe.scan.vex import VexStatement

EXIT_OK = 0
EXIT_GATE_FAILED = 1
FORMATS = ("json", "table", "plan")
_DB_HELP = "SQLAlchemy URL of the advisory store (default: $PATCHPIPE_DB, else $AIRFLOW_HOME/patchpipe.db)"

_EXAMPLES = """\
examples:
  patchpipe scan 127.0.0.1:5000/demo/web:1.0                 findings as JSON, most urgent first
  patchpipe scan --local demo/web:1.0 --format table         from the local Docker Engine, as a table
  patchpipe scan --rootfs /srv/chroots/bookworm --db sqlite:////var/lib/patchpipe/advisories.db
  patchpipe scan 127.0.0.1:5000/demo/web:1.0 --policy web-policy.yaml   findings, then the gate's decisions
  patchpipe scan --trivy-report trivy.json --format table    a Trivy report's findings, as a table
  patchpipe scan --trivy-report trivy.json --format plan     its patch plan (JSON, like Copacetic's)

Findings come from the advisory store: fill it first with `patchpipe advisories sync`.
Order: known exploited (KEV), then fixable, then severity, then EPSS, then id.

--trivy-report reads `trivy image --format json` output (SchemaVersion 2) instead: OS and language
package findings, with KEV and EPSS from the store when it has them. --format plan (Trivy reports
only) prints the patch plan: each OS package with a fixed version, to the highest one Trivy names.

A --policy file is shaped like a fleet manifest's policy: block (block_severities, fixable_only,
ignore, vex); its vex paths (OpenVEX JSON documents) are relative to the file.

exit status:
  0  the findings are listed (with --policy: and the gate passed)
  1  with --policy: the gate failed, at least one finding blocks
  2  an error: a bad image, Trivy report, policy file or OpenVEX document, an unreachable registry or store
"""


def add_scan_command(groups: argparse._SubParsersAction) -> None:
    scan = groups.add_parser(
        "scan",
        help="list the vulnerabilities of an image's installed packages",
        description="Read the installed packages of an image or root filesystem, without running it, and\n"
        "match them against the advisory store: one finding per vulnerability and binary package.\n"
        "Or read the findings of a Trivy JSON report (--trivy-report), or its patch plan (--format plan).",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_trivy_report_argument(add_target_arguments(scan))
    scan.add_argument("--format", choices=FORMATS, default="json",
                      help="output format (default: json; plan: with --trivy-report only)")
    scan.add_argument("--db", metavar="URL", help=_DB_HELP)
    scan.add_argument("--policy", metavar="FILE", help="decide each finding by this policy (YAML or JSON, a fleet "
                      "manifest's policy: block) and exit 1 when one blocks")
    scan.set_defaults(command=_scan, help_parser=scan)


def _add_trivy_report_argument(target: argparse._MutuallyExclusiveGroup) -> None:
    """--trivy-report FILE, a third choice in the IMAGE | --rootfs group of add_target_arguments."""
    target.add_argument("--trivy-report", metavar="FILE",
                        help="a Trivy JSON report (trivy image --format json) instead of an image")


def _scan(args: argparse.Namespace) -> int:
    from patchpipe import db
    from patchpipe.errors import PatchpipeError
    from patchpipe.scan.match import match
    from patchpipe.scan.priority import prioritized

    if args.trivy_report is not None:
        return _scan_trivy_report(args)
    if args.format == "plan":
        raise PatchpipeError("--format plan prints a Trivy report's patch plan; it needs --trivy-report FILE")
    policy = _read_policy(args.policy) if args.policy else None  # first: a mistake in it costs no image read
    subject, inventory = read_target(args)
    engine = db.make_engine(args.db or db.database_url())
    try:
        db.create_schema(engine)
        findings = prioritized(match(engine, inventory))
    finally:
        engine.dispose()
    result = _gate(*policy, subject, inventory, findings) if policy else None
    print(format_json(inventory, findings, result) if args.format == "json"
          else format_table(inventory, findings, result))
    return EXIT_GATE_FAILED if result is not None and not result.passed else EXIT_OK


def _scan_trivy_report(args: argparse.Namespace) -> int:
    from datetime import datetime, timezone

    from patchpipe import db
    from patchpipe.errors import PatchpipeError
    from patchpipe.scan.policy import gate
    from patchpipe.scan.priority import prioritized
    from patchpipe.scan.trivy import read_trivy_report, trivy_patch_plan, vex_target, with_exploit_data
    from patchpipe.scan.vex_match import VexStatements

    for flag, given in (("--local", args.local), ("--platform", args.platform)):
        if given:
            raise PatchpipeError(f"{flag} applies to reading an IMAGE; it does not apply to --trivy-report")
    if args.format == "plan" and args.policy:
        raise PatchpipeError("--policy decides findings; it does not apply to --format plan")
    policy = _read_policy(args.policy) if args.policy else None
    report = read_trivy_report(args.trivy_report)
    if args.format == "plan":
        plan = trivy_patch_plan(report, report.artifact, report.artifact, report.repo_digest or "")
        print(json.dumps(plan.to_dict(), indent=2))
        return EXIT_OK
    engine = db.make_engine(args.db or db.database_url())
    try:
        db.create_schema(engine)
        findings = prioritized(with_exploit_data(report.findings, engine))
    finally:
        engine.dispose()
    result = None
    if policy:
        vex = VexStatements(policy[1], vex_target(report))
        result = gate(findings, policy[0], datetime.now(timezone.utc).date(), vex=vex)
    print(format_json(report, findings, result) if args.format == "json" else format_table(report, findings, result))
    return EXIT_GATE_FAILED if result is not None and not result.passed else EXIT_OK


def _read_policy(file: str) -> tuple[Policy, list[VexStatement]]:
    from pathlib import Path

    from patchpipe.fleet.loader import load_policy
    from patchpipe.scan.vex import load_vex

    policy = load_policy(file)
    return policy, load_vex(policy.vex_paths(Path(file).parent))


def _gate(policy: Policy, statements: list[VexStatement], subject: SbomSubject, inventory: Inventory,
          findings: list[Finding]) -> GateResult:
    from datetime import datetime, timezone

    from patchpipe.scan.policy import gate
    from patchpipe.scan.vex_match import VexStatements, VexTarget

    image = subject.name if subject.kind == "image" else None
    vex = VexStatements(statements, VexTarget.of(inventory, image))
    return gate(findings, policy, datetime.now(timezone.utc).date(), vex=vex)


def format_json(scanned: Inventory | TrivyReport, findings: list[Finding], gate: GateResult | None = None) -> str:
    os, packages = _system(scanned)
    document = {
        "os": {"family": os.id, "version": os.version_id or os.version_codename},
        "packages": packages,
        "findings": [finding.to_dict() for finding in findings],
    }
    if gate is not None:
        document["gate"] = gate.to_dict()
    return json.dumps(document, indent=2)


def format_table(scanned: Inventory | TrivyReport, findings: list[Finding], gate: GateResult | None = None) -> str:
    os, packages = _system(scanned)
    system = " ".join(filter(None, [os.id, os.version_id, f"({os.version_codename})" if os.version_codename else None]))
    count = len(findings)
    heading = f"{system}: {packages} packages, {count} finding{'' if count == 1 else 's'}"
    rows = [("ID", "PACKAGE", "INSTALLED", "FIXED", "STATUS", "SEVERITY", "KEV", "EPSS")]
    for f in findings:
        rows.append((f.id, f.package, f.installed, f.fixed or "-", f.status.value, f.severity.value,
                     "yes" if f.kev else "-", "-" if f.epss is None else f"{f.epss:.5f}"))
    lines = [heading, *_aligned(rows)]
    if gate is not None:
        lines += ["", *format_gate(gate)]
    return "\n".join(lines)


def _system(scanned: Inventory | TrivyReport) -> tuple:
    """The os-release and package count of an inventory or a Trivy report (see scan.trivy: a report
    without Packages lists counts its vulnerable packages)."""
    from patchpipe.scan.trivy import TrivyReport

    if isinstance(scanned, TrivyReport):
        return scanned.os, scanned.package_count
    return scanned.os, len(scanned.packages)


def format_gate(gate: GateResult) -> list[str]:
    """The gate's verdict with a count per outcome, one line per decision with its reason, and the
    expired ignore entries."""
    counts = Counter(d.outcome for d in gate.decisions)
    summary = ", ".join(f"{counts[o]} {o}" for o in ("blocks", "not_affected", "ignored", "allowed") if counts[o])
    lines = [f"gate: {'passed' if gate.passed else 'failed'}" + (f" ({summary})" if summary else "")]
    if gate.decisions:
        lines += _aligned([("OUTCOME", "ID", "PACKAGE", "REASON"),
                           *((d.outcome, d.finding_id, d.package, d.reason) for d in gate.decisions)])
    lines += [f"expired ignore entry: {e.id} (expired {e.expires.isoformat()}): {e.reason}"
              for e in gate.expired_ignores]
    return lines


def _aligned(rows: list[tuple[str, ...]]) -> list[str]:
    """Rows as columns two spaces apart; the last column is not padded."""
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1] for row in rows]
