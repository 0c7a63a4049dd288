"""A run report as one self-contained HTML page (inline CSS, no scripts), for a browser or an email.

Jinja2 with autoescaping on, so every value from the ledger (a failure reason can hold anything a
failing command printed) is escaped; the template marks nothing ``safe``. The template lives in this
module rather than a package data file, so it ships with the code whatever way patchpipe is installed.
"""

from __future__ import annotations

from functools import lru_cache

from jinja2 import Environment, StrictUndefined, Template

from patchpipe.reports.model import RunReport
from patchpipe.reports.wording import describe_counts, timestamp

_TEMPLATE = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Patch run {{ run.run_id }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem; color: #1d2733; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; }
th, td { border: 1px solid #c9d3de; padding: 0.25rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #eef2f6; }
code { font-size: 0.9em; }
.status-promoted, .outcome-success { color: #1a7f37; }
.status-failed, .status-rolled_back, .outcome-failed { color: #c62828; }
.status-noop, .outcome-skipped { color: #6b7785; }
</style>
</head>
<body>
<h1>Patch run <code>{{ run.run_id }}</code></h1>
<ul>
<li><strong>Status:</strong> <span class="status-{{ run.status.value }}">{{ run.status.value }}</span></li>
<li><strong>Type:</strong> {{ run.run_type.value }}</li>
{% if run.window_start or run.window_end %}<li><strong>Window:</strong> {{ ts(run.window_start) }} to {{ ts(run.window_end) }}</li>{% endif %}
<li><strong>Started:</strong> {{ ts(run.started_at) }}</li>
<li><strong>Finished:</strong> {{ ts(run.finished_at) }} ({{ report.duration }})</li>
</ul>
<p>{{ report.totals }}</p>
{% if report.run_failures %}
<h2>Run failures</h2>
<ul>{% for s in report.run_failures %}<li><code>{{ s.stage }}</code>: {{ s.note or "no reason recorded" }}</li>{% endfor %}</ul>
{% endif %}
{% if report.images %}
<table>
<tr><th>Image</th><th>Result</th><th>Packages</th><th>Findings fixed</th><th>Staging</th><th>Production</th><th>Why</th></tr>
{% for image in report.images %}
<tr><td><a href="#image-{{ loop.index }}"><code>{{ image.name }}</code></a></td>
<td class="status-{{ image.status }}">{{ image.status }}</td><td>{{ image.record.packages | length }}</td>
<td>{{ image.scan.fixed | length if image.scan else 0 }}</td><td>{{ image.staging }}</td><td>{{ image.production }}</td>
<td>{{ image.why }}</td></tr>
{% endfor %}
</table>
{% endif %}
{% for image in report.images %}{% set r = image.record %}
<section id="image-{{ loop.index }}">
<h2><code>{{ image.name }}</code>: <span class="status-{{ image.status }}">{{ image.status }}</span></h2>
<p>{{ image.why }}</p>
<ul>
<li><strong>Source:</strong> <code>{{ r.source_ref or "-" }}</code> @ <code>{{ r.before_digest or "-" }}</code></li>
{% if r.candidate_tag %}<li><strong>Candidate:</strong> <code>{{ r.candidate_tag }}</code> @ <code>{{ r.after_digest or "-" }}</code></li>{% endif %}
<li><strong>Staging:</strong> {{ image.staging }}</li>
<li><strong>Production:</strong> {{ image.production }}</li>
{% if image.approval %}<li><strong>Approval:</strong> {{ image.approval }}</li>{% endif %}
</ul>
{% if r.packages %}
<h3>Packages</h3>
<table><tr><th>Package</th><th>From</th><th>To</th></tr>
{% for p in r.packages %}<tr><td><code>{{ p.name }}</code></td><td><code>{{ p.from_version or "(new)" }}</code></td><td><code>{{ p.to_version }}</code></td></tr>
{% endfor %}</table>
{% endif %}
{% if image.scan or image.production_findings is not none %}
<h3>Findings</h3>
<ul>
{% if image.production_findings is not none %}<li><strong>Production before:</strong> {{ counts(image.production_findings) }}</li>{% endif %}
{% if image.candidate_findings is not none %}<li><strong>Candidate:</strong> {{ counts(image.candidate_findings) }}</li>{% endif %}
{% if image.scan %}{% for label, ids in [("Fixed", image.scan.fixed), ("Still open", image.scan.still_open), ("Introduced", image.scan.introduced)] %}
<li><strong>{{ label }} ({{ ids | length }}):</strong> {% for i in ids %}<code>{{ i }}</code>{% if not loop.last %}, {% endif %}{% else %}none{% endfor %}</li>
{% endfor %}
{% if image.scan.gate %}<li><strong>Policy gate:</strong> {{ image.scan.gate }}{% if image.scan.gate_decisions %}<ul>{% for d in image.scan.gate_decisions %}<li>{{ d }}</li>{% endfor %}</ul>{% endif %}</li>{% endif %}
{% endif %}
</ul>
{% endif %}
{% if image.rollbacks %}
<h3>Rollbacks</h3>
<ul>{% for sentence in image.rollbacks %}<li>{{ sentence }}</li>{% endfor %}</ul>
{% endif %}
{% if image.stages %}
<h3>Stages</h3>
<table><tr><th>Stage</th><th>Outcome</th><th>Started</th><th>Duration</th><th>Note</th></tr>
{% for s in image.stages %}<tr><td><code>{{ s.stage }}</code></td><td class="outcome-{{ s.outcome }}">{{ s.outcome }}</td><td>{{ ts(s.started_at) }}</td><td>{{ s.duration }}</td><td>{{ s.note }}</td></tr>
{% endfor %}</table>
{% endif %}
</section>
{% endfor %}
</body>
</html>
"""


def render_html(report: RunReport) -> str:
    return _template().render(report=report, run=report.run, ts=timestamp, counts=describe_counts)


@lru_cache(maxsize=1)
def _template() -> Template:
    environment = Environment(autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return environment.from_string(_TEMPLATE)
