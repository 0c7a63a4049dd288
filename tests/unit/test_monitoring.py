"""include/monitoring: the alert rules pass promtool (syntax and their own unit tests), the example
Prometheus configuration is valid, and the Grafana dashboard and the rules query only metrics the
plugin's endpoint really exports, in valid PromQL.

promtool comes from Debian's ``prometheus`` package (.ci/run installs it).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from patchpipe.dashboard.findings_source import current_findings
from patchpipe.dashboard.metrics import metrics_text
from support.fleet_ledger import NOW, fill_fleet_ledger

MONITORING = Path(__file__).resolve().parents[2] / "include" / "monitoring"
RULES = MONITORING / "patchpipe-alerts.yml"
DASHBOARD = MONITORING / "grafana-dashboard.json"
# Grafana's variables, replaced by what Grafana would send, so promtool can parse the queries.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__range": "30d", "$__interval": "1m", "$image": ".*"}


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.fail("promtool is not installed: `apt-get install prometheus` (as .ci/run does)", pytrace=False)
    return subprocess.run([tool, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def check(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, f"{' '.join(result.args)}:\n{result.stdout}\n{result.stderr}"


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> set[str]:
    """Every metric name a scrape of a realistic ledger exposes (counters with and without _total)."""
    from patchpipe.db import create_schema, make_engine

    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('ledger') / 'patchpipe.db'}")
    create_schema(engine)
    fill_fleet_ledger(engine)
    text = metrics_text(engine, current_findings, lambda: NOW).decode()
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
    engine.dispose()
    return names


def metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\bpatchpipe_[a-zA-Z0-9_:]*", expr))


def dashboard_queries() -> list[tuple[str, str]]:
    """(where, PromQL) of every panel target and query variable of the dashboard."""
    dashboard = json.loads(DASHBOARD.read_text())
    queries = []

    def panels(items):
        for panel in items:
            yield panel
            yield from panels(panel.get("panels", []))

    for panel in panels(dashboard["panels"]):
        assert panel.get("targets"), f"panel {panel['title']!r} has no query"
        for target in panel["targets"]:
            queries.append((f"panel {panel['title']!r} target {target['refId']}", target["expr"]))
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
            match = re.fullmatch(r"label_values\((.+),\s*\w+\)", query)
            assert match, f"variable {variable['name']!r}: unexpected query {query!r}"
            queries.append((f"variable {variable['name']!r}", match.group(1)))
    return queries


def test_alert_rules_pass_promtool_check():
    check(promtool("check", "rules", RULES.name, cwd=MONITORING))


def test_alert_rules_pass_their_promtool_unit_tests():
    check(promtool("test", "rules", "patchpipe-alerts.test.yml", cwd=MONITORING))


def test_the_example_prometheus_configuration_is_valid(tmp_path):
    for name in ("prometheus.yml", RULES.name):
        shutil.copy(MONITORING / name, tmp_path / name)
    (tmp_path / "patchpipe-metrics.token").write_text("a-scrape-token\n")  # promtool checks it exists
    check(promtool("check", "config", "prometheus.yml", cwd=tmp_path))


def test_alert_rules_use_only_exported_metrics(exported):
    rules = [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]
    for rule in rules:
        used = metric_names(rule["expr"])
        assert used, f"alert {rule['alert']} queries no patchpipe metric"
        assert used <= exported, f"alert {rule['alert']} queries {sorted(used - exported)}, not exported"


def test_dashboard_queries_use_only_exported_metrics(exported):
    queries = dashboard_queries()
    assert len(queries) >= 10
    for where, expr in queries:
        used = metric_names(expr)
        assert used, f"{where}: {expr!r} queries no patchpipe metric"
        assert used <= exported, f"{where}: {expr!r} queries {sorted(used - exported)}, which /metrics does not export"


def test_dashboard_queries_are_valid_promql(tmp_path):
    """promtool parses each query as a recording rule's expression: a typo fails here, not in Grafana."""
    rules = []
    for index, (where, expr) in enumerate(dashboard_queries()):
        for variable, value in sorted(GRAFANA_VARIABLES.items(), key=lambda item: -len(item[0])):
            expr = expr.replace(variable, value)
        assert "$" not in expr, f"{where}: unknown Grafana variable in {expr!r}"
        rules.append({"record": f"dashboard:query_{index}", "expr": expr})
    (tmp_path / "dashboard-queries.yml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    check(promtool("check", "rules", "dashboard-queries.yml", cwd=tmp_path))
