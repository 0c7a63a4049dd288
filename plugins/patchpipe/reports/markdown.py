"""A run report as Markdown (GitHub-flavoured: tables), for a ticket, a chat message or a file.

Ledger text can hold anything a failing command printed, so every value is escaped: identifiers go
in code spans, prose has Markdown's punctuation backslash-escaped and ``<``/``>``/``&`` as entities
(many renderers pass raw HTML through), and newlines and table pipes cannot break the layout.
"""

from __future__ import annotations

import re

from patchpipe.reports.model import ImageReport, RunReport, ScanSummary
from patchpipe.reports.wording import describe_counts, timestamp

# What can start or end emphasis, code, links, tables or strikethrough mid-line. Text never starts a
# line here (it always follows a list marker or a cell), so line-start syntax (#, +, 1.) needs nothing.
# An underscore between letters or digits cannot make emphasis, so "analyze_production" stays readable.
_PUNCTUATION = re.compile(r"([\\`*\[\]|~]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")


def text(value: object) -> str:
    """Prose, escaped: renders as exactly the characters given, on one line. With ``[`` and ``]``
    escaped no link can form, so parentheses need nothing."""
    flat = " ".join(str(value).split())
    flat = flat.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _PUNCTUATION.sub(r"\\\1", flat)


def code(value: object) -> str:
    """An identifier or digest as a code span; a backtick inside gets a longer fence. Pipes stay escaped
    because GitHub splits table cells on them even inside code spans."""
    flat = " ".join(str(value).split()).replace("|", "\\|")
    if not flat:
        return ""
    fence = "`" * (max((len(run) for run in re.findall(r"`+", flat)), default=0) + 1)
    padded = f" {flat} " if flat.startswith("`") or flat.endswith("`") else flat
    return f"{fence}{padded}{fence}"


def render_markdown(report: RunReport) -> str:
    run = report.run
    lines = [f"# Patch run {code(run.run_id)}", ""]
    lines += [f"- **Status:** {text(run.status.value)}", f"- **Type:** {text(run.run_type.value)}"]
    if run.window_start or run.window_end:
        lines.append(f"- **Window:** {timestamp(run.window_start)} to {timestamp(run.window_end)}")
    lines += [f"- **Started:** {timestamp(run.started_at)}",
              f"- **Finished:** {timestamp(run.finished_at)} ({text(report.duration)})", "",
              text(report.totals), ""]
    if report.run_failures:
        lines += ["## Run failures", ""]
        lines += [f"- {code(s.stage)}: {text(s.note or 'no reason recorded')}" for s in report.run_failures]
        lines.append("")
    if report.images:
        lines += ["| Image | Result | Packages | Findings fixed | Staging | Production | Why |",
                  "|---|---|---|---|---|---|---|"]
        for image in report.images:
            fixed = len(image.scan.fixed) if image.scan else 0
            lines.append(f"| {code(image.name)} | {text(image.status)} | {len(image.record.packages)} | {fixed} | "
                         f"{text(image.staging)} | {text(image.production)} | {text(image.why)} |")
        lines.append("")
    for image in report.images:
        lines += _image(image)
    return "\n".join(lines).rstrip() + "\n"


def _image(image: ImageReport) -> list[str]:
    r = image.record
    lines = [f"## {code(image.name)}: {text(image.status)}", "", text(image.why), ""]
    lines.append(f"- **Source:** {code(r.source_ref or '-')} @ {code(r.before_digest or '-')}")
    if r.candidate_tag:
        lines.append(f"- **Candidate:** {code(r.candidate_tag)} @ {code(r.after_digest or '-')}")
    lines += [f"- **Staging:** {text(image.staging)}", f"- **Production:** {text(image.production)}"]
    if image.approval:
        lines.append(f"- **Approval:** {text(image.approval)}")
    lines.append("")
    if r.packages:
        lines += ["### Packages", "", "| Package | From | To |", "|---|---|---|"]
        lines += [f"| {code(p.name)} | {code(p.from_version or '(new)')} | {code(p.to_version)} |" for p in r.packages]
        lines.append("")
    lines += _findings(image)
    if image.rollbacks:
        lines += ["### Rollbacks", ""] + [f"- {text(sentence)}" for sentence in image.rollbacks] + [""]
    if image.stages:
        lines += ["### Stages", "", "| Stage | Outcome | Started | Duration | Note |", "|---|---|---|---|---|"]
        lines += [f"| {code(s.stage)} | {text(s.outcome)} | {timestamp(s.started_at)} | {text(s.duration)} | "
                  f"{text(s.note)} |" for s in image.stages]
        lines.append("")
    return lines


def _findings(image: ImageReport) -> list[str]:
    scan: ScanSummary | None = image.scan
    if scan is None and image.production_findings is None:
        return []
    lines = ["### Findings", ""]
    if image.production_findings is not None:
        lines.append(f"- **Production before:** {text(describe_counts(image.production_findings))}")
    if image.candidate_findings is not None:
        lines.append(f"- **Candidate:** {text(describe_counts(image.candidate_findings))}")
    if scan is not None:
        for label, ids in (("Fixed", scan.fixed), ("Still open", scan.still_open), ("Introduced", scan.introduced)):
            listed = ", ".join(code(i) for i in ids) if ids else "none"
            lines.append(f"- **{label} ({len(ids)}):** {listed}")
        if scan.gate:
            lines.append(f"- **Policy gate:** {text(scan.gate)}")
            lines += [f"  - {text(d)}" for d in scan.gate_decisions]
    return lines + [""]
