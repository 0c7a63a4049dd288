"""What notifications say (``patchpipe.notify``), from the ledger rows of a realistic run; and how they
look as Slack JSON and as email, with hostile ledger text escaped."""

from __future__ import annotations

from datetime import timedelta


from patchpipe.ledger.store import Ledger
from patchpipe.notify import messages
from patchpipe.notify.email import email_html, email_subject
from patchpipe.notify.notification import Notification
from patchpipe.notify.slack import slack_payload
from support.patch_runs import (
    realistic_ledger,  # noqa: F401  (the ``ledger`` fixture)
    ANALYSIS_ERROR,
    RUN,
    T0,
    VENDOR_CANDIDATE,
    VENDOR_NEW,
    VENDOR_OLD,
    WEB_NEW,
    WEB_OLD,
)




def facts(notification: Notification) -> dict[str, str]:
    return dict(notification.facts)


def test_a_failure_names_image_stage_reason_digests_and_what_happens_next(ledger: Ledger) -> None:
    n = messages.failure(RUN, "vendor-app", "analyze_production", ANALYSIS_ERROR,
                         ledger.stage_results(RUN, "vendor-app"), task="patch_image.analyze_production", attempt=1)

    assert n.title == "patchpipe: analyze_production failed for vendor-app"
    assert n.summary == f"analyze_production failed for vendor-app: {ANALYSIS_ERROR}"
    assert facts(n) == {"Image": "vendor-app", "Stage": "analyze_production", "Run": RUN,
                        "Task": "patch_image.analyze_production (try 1)", "Production digest": VENDOR_OLD,
                        "Candidate": VENDOR_CANDIDATE, "Candidate digest": VENDOR_NEW}
    assert n.details == ("Next: production (tag and service) is rolled back next",)


def test_a_run_level_failure_has_no_image() -> None:
    n = messages.failure(RUN, None, "fetch_advisories", "mirror unreachable")
    assert n.title == "patchpipe: fetch_advisories failed for the run" and facts(n)["Image"] == "-"


def test_a_rollback_says_from_where_to_where_and_why(ledger: Ledger) -> None:
    rollback = [s for s in ledger.stage_results(RUN, "vendor-app") if s.stage == "rollback_production"][0]
    n = messages.rollback(RUN, "vendor-app", "production", rollback.detail)

    assert n.title == "patchpipe: production of vendor-app rolled back"
    assert n.summary.startswith(f"vendor-app: production rolled back from {VENDOR_NEW} to {VENDOR_OLD} "
                                "(production tag restored): analyze_production failed: check request-duration "
                                "was 1003.4 (bound <= 500)")
    assert facts(n)["From"] == f"{VENDOR_CANDIDATE}@{VENDOR_NEW}"
    assert facts(n)["To"].endswith(f"@{VENDOR_OLD}")
    assert facts(n)["Check"] == "request-duration: 1003.4 (bound <= 500)"
    assert facts(n)["Reason"] == ANALYSIS_ERROR


def test_an_approval_request_says_what_waits_until_when_and_where_to_answer() -> None:
    n = messages.approval(RUN, "demo-web", candidate="reg/web:1.0-patch.1", candidate_digest=WEB_NEW,
                          question="Promote demo-web to production?", explanation="It passed staging.",
                          timeout=timedelta(minutes=30), owners=["web-team@example.org"],
                          link="http://airflow:8080/dags/patch_lifecycle/runs/r/tasks/t/required_actions")

    assert n.title == "patchpipe: demo-web waits for approval to reach production"
    assert n.summary == "Promote demo-web to production? It passed staging."
    assert facts(n)["Answer within"] == "30 min 0 s; no answer rejects the promotion"
    assert facts(n)["Owners"] == "web-team@example.org" and facts(n)["Candidate digest"] == WEB_NEW
    assert n.link.endswith("/required_actions")


def test_the_summary_lists_every_image_and_calls_out_an_overrun(ledger: Ledger) -> None:
    run = ledger.get_run(RUN)
    n = messages.summary(run, ledger.run_summary(RUN), report="/reports/r.html", limit=timedelta(minutes=30))

    assert n.title == f"patchpipe run {RUN}: failed, 1 failed"
    assert n.summary == ("3 images: 1 patched and promoted, 1 with nothing to patch, 1 failed; "
                         "the run overran its window by 17 min 0 s.")
    assert facts(n)["Overrun"] == "17 min 0 s past its 30 min 0 s window"
    assert facts(n)["Duration"] == "47 min 0 s" and facts(n)["Report"] == "/reports/r.html"
    web, worker, vendor = n.details
    assert web == f"demo-web: promoted, 2 packages, {WEB_OLD} -> {WEB_NEW}"
    assert worker == "demo-worker: noop"
    assert vendor.startswith(f"vendor-app: rolled_back, 1 package, production back on {VENDOR_OLD}; "
                             "failed at analyze_production: analysis of vendor-app")

    on_time = messages.summary(run, ledger.run_summary(RUN), limit=timedelta(hours=4))
    assert "Overrun" not in facts(on_time) and not on_time.summary.endswith("window by")


def test_overrun_counts_a_running_run_up_to_now(ledger: Ledger) -> None:
    run = ledger.get_run(RUN)
    assert messages.overrun(run, timedelta(hours=1)) is None
    assert messages.overrun(run, timedelta(minutes=40)) == timedelta(minutes=7)
    running = type(run)(**{**vars(run), "finished_at": None})
    assert messages.overrun(running, timedelta(hours=1), now=T0 + timedelta(hours=3)) == timedelta(hours=2)
    assert messages.overrun(running, timedelta(hours=1)) is None


def test_a_missed_deadline_says_what_is_done_and_what_is_in_progress(ledger: Ledger) -> None:
    records = [r for r in ledger.run_summary(RUN) if r.image != "vendor-app"]
    n = messages.deadline("patch_lifecycle", RUN, deadline_time=T0 + timedelta(hours=4), queued_at=T0,
                          records=records, stages=ledger.stage_results(RUN))

    assert n.title == f"patchpipe: run {RUN} overran its window"
    assert n.summary == f"patch_lifecycle run {RUN} is still running at its deadline 2026-11-24 06:00:00 UTC."
    assert "vendor-app: in progress, last stage rollback_production (success)" in n.details
    assert "demo-web: promoted" in n.details


def test_slack_json_escapes_what_slack_would_turn_into_links_or_mentions() -> None:
    n = Notification(kind="failure", title="patchpipe: <b>x</b>", summary="hi <!channel> & <http://evil|click>",
                     facts=(("Image", "web<>"),), details=("a & b",), link="http://airflow/x")
    payload = slack_payload(n)

    assert set(payload) == {"text", "blocks"}
    assert "<!channel>" not in str(payload) and "&lt;!channel&gt; &amp; &lt;http://evil|click&gt;" in payload["text"]
    header, summary_block, fields, details, actions, context = payload["blocks"]
    assert header == {"type": "header", "text": {"type": "plain_text", "text": "patchpipe: <b>x</b>"}}
    assert summary_block["text"] == {"type": "mrkdwn", "text": "hi &lt;!channel&gt; &amp; &lt;http://evil|click&gt;"}
    assert fields["fields"] == [{"type": "mrkdwn", "text": "*Image*\nweb&lt;&gt;"}]
    assert details["text"]["text"] == "\u2022 a &amp; b"
    assert actions["elements"][0]["url"] == "http://airflow/x"
    assert context["elements"][0]["text"] == "patchpipe \u00b7 FAILED"


def test_slack_limits_are_kept() -> None:
    n = Notification(kind="summary", title="t" * 400, summary="s" * 5000,
                     facts=tuple((f"f{i}", "v") for i in range(12)))
    blocks = slack_payload(n)["blocks"]
    assert len(blocks[0]["text"]["text"]) == 150 and len(blocks[1]["text"]["text"]) == 3000
    assert [len(b["fields"]) for b in blocks if "fields" in b] == [10, 2]


def test_email_subject_is_one_line_and_the_body_is_escaped() -> None:
    n = Notification(kind="rollback", title="patchpipe: web\r\nBcc: victim@example.org",
                     summary="<script>alert(1)</script>", facts=(("Reason", "a < b"),),
                     link="javascript:alert(1)")
    assert email_subject(n) == "patchpipe: web Bcc: victim@example.org"
    body = email_html(n)
    assert "<script>" not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "a &lt; b" in body and "href" not in body  # only http(s) links become anchors
