"""Where run reports are written: ``$PATCHPIPE_REPORTS_DIR`` (default ``$AIRFLOW_HOME/reports``),
one ``<run_id>.md`` and one ``<run_id>.html`` per run.

A run id can come from a user (a manual run's id is free text), so it is made safe for a file name:
anything but letters, digits and ``._:+-`` becomes ``_`` and it cannot start with a dot. Files are
written to a temporary name and renamed, so a reader never sees half a report, and writing a run's
report again (a rerun) replaces it.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from patchpipe.errors import PatchpipeError
from patchpipe.ledger.store import Ledger
from patchpipe.reports.html import render_html
from patchpipe.reports.markdown import render_markdown
from patchpipe.reports.model import build_report

REPORTS_DIR_ENV = "PATCHPIPE_REPORTS_DIR"
_UNSAFE = re.compile(r"[^A-Za-z0-9._:+-]")


@dataclass(frozen=True)
class ReportFiles:
    markdown: Path
    html: Path


def reports_dir() -> Path:
    """``$PATCHPIPE_REPORTS_DIR``, else ``$AIRFLOW_HOME/reports`` (``~/airflow/reports`` without AIRFLOW_HOME)."""
    configured = os.environ.get(REPORTS_DIR_ENV, "").strip()
    if configured:
        return Path(configured).expanduser()
    return Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow").expanduser() / "reports"


def report_files(run_id: str, directory: Path | str | None = None) -> ReportFiles:
    """The paths of ``run_id``'s report, written or not."""
    base = Path(directory) if directory is not None else reports_dir()
    name = _UNSAFE.sub("_", run_id).lstrip(".") or "_"
    return ReportFiles(base / f"{name}.md", base / f"{name}.html")


def write_report(ledger: Ledger, run_id: str, directory: Path | str | None = None) -> ReportFiles:
    """Write ``run_id``'s report from the ledger, as Markdown and HTML; returns where."""
    report = build_report(ledger, run_id)
    files = report_files(run_id, directory)
    try:
        files.markdown.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(files.markdown, render_markdown(report))
        _write_atomically(files.html, render_html(report))
    except OSError as exc:
        raise PatchpipeError(f"cannot write the report of run {run_id!r} to {files.markdown.parent} "
                             f"(${REPORTS_DIR_ENV}): {exc.strerror or exc}") from None
    return files


def _write_atomically(path: Path, content: str) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(content)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
