"""Run reports (Markdown and HTML) of a realistic run: a promoted image with CVEs fixed, a rolled-back
one with its cause, a no-op; hostile ledger text is escaped in both formats."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from patchpipe.db import create_schema, make_engine
from patchpipe.errors import PatchpipeError
from patchpipe.ledger.store import Ledger
from patchpipe.reports import build_report, render_html, render_markdown, report_files, write_report
from patchpipe.reports.markdown import code, text
from support.patch_runs import (
    realistic_ledger,  # noqa: F401  (the ``ledger`` fixture)
    HOSTILE,
    RUN,
    VENDOR_NEW,
    VENDOR_OLD,
    WEB_CANDIDATE,
    WEB_NEW,
    WEB_OLD,
    WORKER_DIGEST,
)




def section(markdown: str, image: str) -> str:
    """One image's section of the Markdown report."""
    return markdown.split(f"## `{image}`", 1)[1].split("\n## ", 1)[0]


def test_the_report_gathers_each_images_story_from_the_ledger(ledger: Ledger) -> None:
    report = build_report(ledger, RUN)
    web, vendor, worker = (next(i for i in report.images if i.name == n)
                           for n in ("demo-web", "vendor-app", "demo-worker"))

    assert (report.run.status.value, report.duration) == ("failed", "47 min 0 s")
    assert report.totals == "3 images: 1 patched and promoted, 1 with nothing to patch, 1 failed (1 rolled back)"
    assert (web.status, web.staging, web.production) == ("promoted", "ok", "ok")
    assert web.scan.fixed == ("CVE-2026-0001 (perl-base)", "CVE-2026-0002 (liblzma5)")
    assert web.approval == "Approve by alice at 2026-11-24 02:20:00+00:00"
    assert web.production_findings is not None and sum(web.production_findings.values()) == 3
    assert (vendor.status, vendor.production) == ("rolled_back", "failed at analyze_production, rolled back")
    assert vendor.rollbacks == (
        f"production rolled back from {VENDOR_NEW} to {VENDOR_OLD} (production tag restored): analyze_production "
        f"failed: check request-duration was 1003.4 (bound <= 500): {vendor.record.failure_reason}",)
    assert vendor.approval == ""  # the manifest asked for none
    assert (worker.status, worker.why) == ("noop", f"demo-worker: nothing to patch at {WORKER_DIGEST}")


def test_markdown_says_what_was_found_patched_deployed_and_rolled_back(ledger: Ledger) -> None:
    markdown = render_markdown(build_report(ledger, RUN))

    assert markdown.startswith(f"# Patch run `{RUN}`\n")
    assert "- **Status:** failed" in markdown
    assert "3 images: 1 patched and promoted, 1 with nothing to patch, 1 failed (1 rolled back)" in markdown
    assert "| `demo-web` | promoted | 2 | 2 | ok | ok |" in markdown

    web = section(markdown, "demo-web")
    assert f"- **Candidate:** `{WEB_CANDIDATE}` @ `{WEB_NEW}`" in web
    assert f"- **Source:** `127.0.0.1:5000/demo/web:1.0` @ `{WEB_OLD}`" in web
    assert "| `perl-base` | `5.36.0-7+deb12u1` | `5.36.0-7+deb12u2` |" in web
    assert "- **Fixed (2):** `CVE-2026-0001 (perl-base)`, `CVE-2026-0002 (liblzma5)`" in web
    assert "- **Still open (1):** `CVE-2026-0003 (tzdata)`" in web
    assert "- **Production before:** 3 findings (1 critical, 1 high, 1 low)" in web
    assert "- **Approval:** Approve by alice" in web
    assert "| `promote` | success |" in web

    vendor = section(markdown, "vendor-app")
    assert "### Rollbacks" in vendor
    assert f"production rolled back from {VENDOR_NEW} to {VENDOR_OLD}" in vendor
    assert "check request-duration was 1003.4 (bound &lt;= 500)" in vendor
    assert "- **Production:** failed at analyze_production, rolled back" in vendor

    worker = section(markdown, "demo-worker")
    assert f"demo-worker: nothing to patch at {WORKER_DIGEST}" in worker
    assert "- **Production before:** 0 findings" in worker


def test_markdown_escapes_hostile_text(ledger: Ledger) -> None:
    markdown = render_markdown(build_report(ledger, RUN))

    assert "<script>" not in markdown and HOSTILE not in markdown
    escaped = "&lt;script&gt;alert('pwned')&lt;/script&gt; \\| \\*\\*bold\\*\\* \\`tick\\` &amp; \\[link\\](http"
    assert escaped in markdown
    for row in (line for line in markdown.splitlines() if line.startswith("| `analyze_production`")):
        assert len(re.findall(r"(?<!\\)\|", row)) == 6  # the hostile pipe did not add a column
    assert text("a\nb\r\nc") == "a b c"
    assert text("analyze_production _x_ 2*3") == "analyze_production \\_x\\_ 2\\*3"
    assert code("x`y") == "``x`y``" and code("`x") == "`` `x ``" and code("a|b") == "`a\\|b`"


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.append(tag)

    def handle_data(self, data) -> None:
        self.text.append(data)


def test_html_holds_the_same_story_and_escapes_hostile_text(ledger: Ledger) -> None:
    html = render_html(build_report(ledger, RUN))
    parsed = _Collector()
    parsed.feed(html)
    shown = " ".join(" ".join(parsed.text).split())

    assert "script" not in parsed.tags  # the hostile <script> is text, not an element
    assert "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;" in html
    assert HOSTILE in shown  # and reads exactly as the ledger has it
    assert f"Patch run {RUN}" in shown
    assert "demo-web : promoted" in shown or "demo-web: promoted" in shown
    assert "Fixed (2): CVE-2026-0001 (perl-base) , CVE-2026-0002 (liblzma5)" in shown
    assert f"production rolled back from {VENDOR_NEW} to {VENDOR_OLD} (production tag restored)" in shown
    assert f"demo-worker: nothing to patch at {WORKER_DIGEST}" in shown
    assert "Approve by alice" in shown


def test_hostile_run_ids_and_image_names_are_escaped_too(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'l.db'}")
    create_schema(engine)
    ledger = Ledger(engine)
    run_id = "manual__<img src=x onerror=alert(1)>"
    ledger.start_run(run_id, "manual")
    ledger.record_image(run_id, "web<b>", status="failed", failure_stage="patch", failure_reason="</td></tr><h1>x")

    report = build_report(ledger, run_id)
    html, markdown = render_html(report), render_markdown(report)

    assert "<img" not in html and "<b>" not in html and "<h1>x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<img" not in markdown.replace("`manual__<img src=x onerror=alert(1)>`", "")  # only inside code spans
    assert "&lt;/td&gt;&lt;/tr&gt;&lt;h1&gt;x" in markdown


def test_write_report_puts_both_files_in_the_reports_dir(ledger: Ledger, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATCHPIPE_REPORTS_DIR", str(tmp_path / "reports"))

    files = write_report(ledger, RUN)

    assert files.markdown == tmp_path / "reports" / f"{RUN}.md"
    assert files.html == tmp_path / "reports" / f"{RUN}.html"
    assert files.markdown.read_text().startswith(f"# Patch run `{RUN}`")
    assert files.html.read_text().startswith("<!DOCTYPE html>")
    again = write_report(ledger, RUN)  # a rerun replaces the report
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == sorted([again.markdown.name, again.html.name])


def test_report_locations(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("PATCHPIPE_REPORTS_DIR", raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "home"))
    assert report_files("manual__1").markdown == tmp_path / "home" / "reports" / "manual__1.md"
    assert report_files("../../etc/passwd", tmp_path).html == tmp_path / "_.._etc_passwd.html"


def test_mistakes_are_named(ledger: Ledger, tmp_path: Path) -> None:
    with pytest.raises(PatchpipeError, match="no patch run 'nope' in the ledger"):
        build_report(ledger, "nope")
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(PatchpipeError, match=f"cannot write the report of run '{re.escape(RUN)}' to {blocker}"):
        write_report(ledger, RUN, blocker)


def test_history_reports_and_notification_texts_import_no_airflow() -> None:
    """They run in the CLI and in plain tests: the core never imports Airflow."""
    import subprocess
    import sys

    code = ("import sys, patchpipe.ledger.history, patchpipe.reports, patchpipe.notify.messages, "
            "patchpipe.notify.slack, patchpipe.notify.email, patchpipe.advisories.published, "
            "patchpipe.cli_ledger_history; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'airflow'))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
