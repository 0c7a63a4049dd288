"""The Airflow notifiers, called the way Airflow calls them, delivering to a local HTTP sink (the
webhook) and a local SMTP server (aiosmtpd), with the ledger of a realistic run behind them.

- task callbacks go through the task runner's own ``_run_task_state_change_callbacks`` on real
  operators (``on_failure_callback`` / ``on_success_callback``);
- the approval notifiers are called by the real ``ProductionApprovalOperator.execute`` (only the
  write of the Human-in-the-loop request to Airflow's metadata database is stubbed);
- the deadline notifier runs inside Airflow's own ``CallbackTrigger``, as the triggerer runs a
  DeadlineAlert's ``AsyncCallback``, with the context the scheduler builds.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from airflow.sdk.exceptions import TaskAwaitingInput
from airflow.sdk.execution_time.task_runner import _run_task_state_change_callbacks

from patchpipe.airflow.deadline import run_deadline_alerts
from patchpipe.airflow.notifiers import EmailNotifier, WebhookNotifier
from patchpipe.airflow.operators import (
    AnalysisOperator,
    ProductionApprovalOperator,
    RollbackProductionOperator,
    SummaryOperator,
)
from patchpipe.db import create_schema, make_engine
from patchpipe.errors import PatchpipeError
from patchpipe.ledger.store import Ledger
from patchpipe.reports import write_report
from support.http_sink import http_sink
from support.patch_runs import (
    ANALYSIS_ERROR,
    RUN,
    T0,
    VENDOR_CANDIDATE,
    VENDOR_NEW,
    VENDOR_OLD,
    WEB_CANDIDATE,
    WEB_NEW,
    write_realistic_run,
)
from support.smtp_sink import smtp_sink, text_of

ROOT = Path(__file__).resolve().parents[2]
LOG = logging.getLogger("test-callbacks")
ONCALL = "oncall@example.org"
SECRET_PATH = "services/T000/B000/s3cr3t"


@pytest.fixture
def ledger(tmp_path: Path, monkeypatch) -> Ledger:
    url = f"sqlite:///{tmp_path / 'patchpipe.db'}"
    monkeypatch.setenv("PATCHPIPE_DB", url)
    monkeypatch.setenv("PATCHPIPE_FLEET", str(ROOT / "include" / "fleet.yaml"))
    monkeypatch.setenv("PATCHPIPE_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.delenv("PATCHPIPE_WEBHOOK_URL", raising=False)
    engine = make_engine(url)
    create_schema(engine)
    ledger = Ledger(engine)
    write_realistic_run(ledger)
    yield ledger
    engine.dispose()


@pytest.fixture
def webhook(monkeypatch):
    with http_sink() as sink:
        conn = {"conn_type": "http", "host": sink.url(SECRET_PATH)}
        monkeypatch.setenv("AIRFLOW_CONN_PATCHPIPE_WEBHOOK", json.dumps(conn))
        yield sink


@pytest.fixture
def mailbox(monkeypatch):
    with smtp_sink() as box:
        conn = {"conn_type": "smtp", "host": "127.0.0.1", "port": box.port,
                "extra": {"from_email": "patchpipe@example.org", "disable_tls": True, "disable_ssl": True,
                          "retry_limit": 0}}
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps(conn))
        monkeypatch.setenv("PATCHPIPE_NOTIFY_EMAIL", ONCALL)
        yield box


def task_context(task, task_id: str, **extra) -> dict:
    """What the task runner hands a callback: the rendered task, its instance, the run."""
    dag_run = SimpleNamespace(dag_id="patch_lifecycle", run_id=RUN, run_type="scheduled", start_date=T0,
                              queued_at=T0, logical_date=T0 - timedelta(days=7))
    ti = SimpleNamespace(id="0190-ti", dag_id="patch_lifecycle", run_id=RUN, task_id=task_id, map_index=1,
                         try_number=1)
    return {"dag_run": dag_run, "run_id": RUN, "task": task, "task_instance": ti, "ti": ti,
            "logical_date": dag_run.logical_date, **extra}


def both(event: str, **kwargs):
    return [WebhookNotifier(event, **kwargs), EmailNotifier(event, **kwargs)]


def slack_text(post) -> str:
    """Every text of a Slack payload, top-level and in its blocks."""
    payload = post.json()
    assert set(payload) == {"text", "blocks"}
    return json.dumps(payload["blocks"]) + payload["text"]


def test_a_failed_stage_reaches_the_webhook_and_the_owners_inbox(ledger, webhook, mailbox) -> None:
    task = AnalysisOperator(task_id="analyze_production", image="vendor-app", environment="production",
                            candidate={"candidate": VENDOR_CANDIDATE}, on_failure_callback=both("failure"))
    context = task_context(task, "patch_image.analyze_production", exception=RuntimeError(ANALYSIS_ERROR))

    _run_task_state_change_callbacks(task, "on_failure_callback", context, LOG)

    (post,) = webhook.posts
    assert post.path == f"/{SECRET_PATH}" and post.headers["Content-Type"] == "application/json"
    payload = post.json()
    assert payload["blocks"][0]["text"]["text"] == "patchpipe: analyze_production failed for vendor-app"
    text = slack_text(post)
    for expected in ("vendor-app", "analyze_production", "request-duration 1003.4 &gt; 500", VENDOR_OLD, VENDOR_NEW,
                     "production (tag and service) is rolled back next", "&lt;script&gt;"):
        assert expected in text
    assert "<script>" not in text

    (mail,) = mailbox.messages
    assert mail["Subject"] == "patchpipe: analyze_production failed for vendor-app"
    assert mail.recipients == [ONCALL, "ops-team@example.org"]  # and the image's owners, from the fleet
    assert mail.sender == "patchpipe@example.org"
    body = text_of(mail)
    for expected in ("vendor-app", "analyze_production", "request-duration 1003.4 &gt; 500", VENDOR_OLD, VENDOR_NEW):
        assert expected in body
    assert "<script>" not in body and "&lt;script&gt;" in body


def test_a_rollback_says_where_production_went_and_why(ledger, webhook, mailbox) -> None:
    task = RollbackProductionOperator(task_id="rollback_production", image="vendor-app", inventory={}, pushed={},
                                      on_success_callback=both("rollback"))

    _run_task_state_change_callbacks(task, "on_success_callback", task_context(task, "patch_image.rollback_production"),
                                     LOG)

    text = slack_text(webhook.posts[0])
    assert "patchpipe: production of vendor-app rolled back" in text
    assert f"production rolled back from {VENDOR_NEW} to {VENDOR_OLD} (production tag restored)" in text
    assert "request-duration: 1003.4 (bound &lt;= 500)" in text
    (mail,) = mailbox.messages
    assert mail["Subject"] == "patchpipe: production of vendor-app rolled back"
    assert f"{VENDOR_CANDIDATE}@{VENDOR_NEW}" in text_of(mail) and "analyze_production failed" in text_of(mail)


def test_a_rollback_that_did_not_happen_sends_nothing(ledger, webhook) -> None:
    task = RollbackProductionOperator(task_id="rollback_production", image="demo-web", inventory={}, pushed={})
    WebhookNotifier("rollback")(task_context(task, "patch_image.rollback_production"))
    assert webhook.posts == []


def approval_fleet(tmp_path: Path) -> Path:
    manifest = yaml.safe_load((ROOT / "include" / "fleet.yaml").read_text())
    web = next(i for i in manifest["images"] if i["name"] == "demo-web")
    web["build"]["context"] = str(ROOT / "include" / "demo" / "demo-web")
    web["approval"] = {"timeout_minutes": 30}
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(manifest))
    return path


def approval_task(tmp_path: Path, monkeypatch) -> ProductionApprovalOperator:
    monkeypatch.setattr("airflow.providers.standard.operators.hitl.upsert_hitl_detail", lambda **kwargs: None)
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "http://airflow.example:8080")
    return ProductionApprovalOperator(task_id="approve_production", image="demo-web",
                                      candidate={"candidate": WEB_CANDIDATE}, fleet_path=str(approval_fleet(tmp_path)),
                                      notifiers=both("approval"))


def test_an_approval_request_reaches_the_owners_while_the_task_waits(ledger, webhook, mailbox, tmp_path,
                                                                      monkeypatch) -> None:
    task = approval_task(tmp_path, monkeypatch)

    with pytest.raises(TaskAwaitingInput):  # the task waits for the answer, after notifying
        task.execute(task_context(task, "patch_image.approve_production"))

    text = slack_text(webhook.posts[0])
    for expected in ("demo-web waits for approval to reach production", "Promote demo-web to production?",
                     WEB_CANDIDATE, WEB_NEW, "30 min 0 s; no answer rejects the promotion", "web-team@example.org",
                     "http://airflow.example:8080/dags/patch_lifecycle/runs/"):
        assert expected in text
    (mail,) = mailbox.messages
    assert mail["Subject"] == "patchpipe: demo-web waits for approval to reach production"
    assert mail.recipients == [ONCALL, "web-team@example.org"]


def test_an_undeliverable_approval_notice_does_not_fail_the_approval(ledger, webhook, tmp_path, monkeypatch) -> None:
    webhook.status = 500
    task = approval_task(tmp_path, monkeypatch)

    with pytest.raises(TaskAwaitingInput):  # not PatchpipeError: the approval still waits
        task.execute(task_context(task, "patch_image.approve_production"))

    assert len(webhook.posts) == 1


def test_the_run_summary_lists_every_image_and_links_the_report(ledger, webhook, mailbox, monkeypatch) -> None:
    files = write_report(ledger, RUN)
    monkeypatch.setenv("PATCHPIPE_RUN_DEADLINE_HOURS", "0.5")
    task = SummaryOperator(task_id="summary", on_success_callback=both("summary"),
                           on_failure_callback=both("summary"))

    _run_task_state_change_callbacks(task, "on_failure_callback", task_context(task, "summary"), LOG)

    text = slack_text(webhook.posts[0])
    for expected in (f"patchpipe run {RUN}: failed, 1 failed", "1 patched and promoted", "demo-web: promoted",
                     f"-&gt; {WEB_NEW}", "vendor-app: rolled_back", "demo-worker: noop", str(files.html),
                     "the run overran its window by 17 min 0 s"):
        assert expected in text
    (mail,) = mailbox.messages
    assert mail.recipients == [ONCALL]  # a run summary goes to the configured recipients only
    assert mail["Subject"] == f"patchpipe run {RUN}: failed, 1 failed"


async def _drain(trigger) -> list:
    return [event async for event in trigger.run()]


def test_a_missed_deadline_is_sent_from_the_triggerer_as_airflow_runs_it(ledger, webhook) -> None:
    from airflow.triggers.callback import CallbackTrigger

    (alert, _) = run_deadline_alerts(timedelta(hours=4))
    dag_run = {"dag_id": "patch_lifecycle", "dag_run_id": RUN, "queued_at": "2026-11-24T02:00:00Z",
               "run_type": "scheduled", "state": "running"}
    context = {"dag_run": dag_run, "deadline": {"id": "0190-deadline",
                                                "deadline_time": datetime(2026, 11, 24, 6, tzinfo=timezone.utc)}}
    trigger = CallbackTrigger(alert.callback.path, {**alert.callback.kwargs, "context": context})

    events = asyncio.run(_drain(trigger))

    assert [e.payload["state"] for e in events] == ["running", "success"]
    text = slack_text(webhook.posts[0])
    assert f"patchpipe: run {RUN} overran its window" in text
    assert "still running at its deadline 2026-11-24 06:00:00 UTC" in text


def test_the_deadline_alerts_are_one_per_channel_from_queued_at() -> None:
    alerts = run_deadline_alerts()
    assert [a.callback.path for a in alerts] == ["patchpipe.airflow.notifiers.WebhookNotifier",
                                                 "patchpipe.airflow.notifiers.EmailNotifier"]
    assert {type(a.reference).__name__ for a in alerts} == {"DagRunQueuedAtDeadline"}
    assert alerts[0].interval == timedelta(hours=4) and alerts[0].callback.kwargs == {"event": "deadline"}


def test_channels_without_configuration_are_off_and_say_so(ledger, monkeypatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_PATCHPIPE_WEBHOOK", raising=False)
    monkeypatch.delenv("PATCHPIPE_NOTIFY_EMAIL", raising=False)
    webhook, email = both("summary")
    assert webhook.off_because() == "no Airflow connection 'patchpipe_webhook' and no $PATCHPIPE_WEBHOOK_URL"
    assert email.off_because() == "no recipients (to= or $PATCHPIPE_NOTIFY_EMAIL)"
    webhook({"run_id": RUN})  # nothing to deliver to, nothing raised
    email({"run_id": RUN})


def test_a_webhook_error_names_the_connection_but_never_the_secret_url(ledger, webhook) -> None:
    webhook.status = 500
    with pytest.raises(PatchpipeError) as error:
        WebhookNotifier("summary")({"run_id": RUN})
    assert "connection 'patchpipe_webhook'" in str(error.value) and "HTTP 500" in str(error.value)
    assert SECRET_PATH not in str(error.value)


def test_the_webhook_url_may_come_from_a_connection_uri_or_the_environment(ledger, monkeypatch) -> None:
    with http_sink() as sink:
        monkeypatch.setenv("AIRFLOW_CONN_PATCHPIPE_WEBHOOK", sink.url("hooks/abc"))  # URI form: path in schema
        WebhookNotifier("summary")({"run_id": RUN})
        monkeypatch.delenv("AIRFLOW_CONN_PATCHPIPE_WEBHOOK")
        monkeypatch.setenv("PATCHPIPE_WEBHOOK_URL", sink.url("from-env"))
        WebhookNotifier("summary")({"run_id": RUN})
    assert [p.path for p in sink.posts] == ["/hooks/abc", "/from-env"]


def test_email_without_an_smtp_connection_is_an_error_that_names_it(ledger, monkeypatch) -> None:
    monkeypatch.setenv("PATCHPIPE_NOTIFY_EMAIL", ONCALL)
    monkeypatch.setenv("PATCHPIPE_SMTP_CONN_ID", "no_such_smtp")
    with pytest.raises(PatchpipeError, match="Airflow connection 'no_such_smtp' does not exist"):
        EmailNotifier("summary")({"run_id": RUN})


def test_an_unknown_event_is_refused_when_the_dag_is_parsed() -> None:
    with pytest.raises(ValueError, match="event 'oops' is not one of failure, rollback, approval, summary, deadline"):
        WebhookNotifier("oops")
