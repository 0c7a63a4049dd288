"""Run reports: what a run found, patched, deployed and rolled back, and why, as Markdown and HTML.

``build_report(ledger, run_id)`` gathers it from the ledger (``model``); ``render_markdown`` and
``render_html`` lay it out; ``write_report`` writes both where ``files.reports_dir()`` says.
"""

from patchpipe.reports.files import ReportFiles, report_files, reports_dir, write_report
from patchpipe.reports.html import render_html
from patchpipe.reports.markdown import render_markdown
from patchpipe.reports.model import RunReport, build_report

__all__ = ["ReportFiles", "RunReport", "build_report", "render_html", "render_markdown", "report_files",
           "reports_dir", "write_report"]
