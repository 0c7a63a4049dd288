"""Notification settings read from the environment; secrets (a webhook URL, SMTP credentials) belong
in Airflow connections instead, which ``patchpipe.airflow.notifiers`` reads first.

| setting | default | meaning |
|---|---|---|
| ``PATCHPIPE_WEBHOOK_URL`` | unset | the webhook, when no ``patchpipe_webhook`` connection exists |
| ``PATCHPIPE_NOTIFY_EMAIL`` | unset | comma-separated recipients of every email; unset: no email |
| ``PATCHPIPE_NOTIFY_FROM`` | the SMTP connection's ``from_email`` | the sender |
| ``PATCHPIPE_SMTP_CONN_ID`` | ``smtp_default`` | the smtp provider's connection |
| ``PATCHPIPE_RUN_DEADLINE_HOURS`` | ``4`` (``defaults.patch_window_hours``) | how long a run may take |
"""

from __future__ import annotations

import os
from datetime import timedelta

from patchpipe.errors import PatchpipeError

WEBHOOK_URL_ENV = "PATCHPIPE_WEBHOOK_URL"
EMAIL_TO_ENV = "PATCHPIPE_NOTIFY_EMAIL"
EMAIL_FROM_ENV = "PATCHPIPE_NOTIFY_FROM"
SMTP_CONN_ENV = "PATCHPIPE_SMTP_CONN_ID"
RUN_DEADLINE_ENV = "PATCHPIPE_RUN_DEADLINE_HOURS"
DEFAULT_RUN_DEADLINE_HOURS = 4.0


def webhook_url() -> str | None:
    return os.environ.get(WEBHOOK_URL_ENV, "").strip() or None


def email_recipients() -> list[str]:
    return [address.strip() for address in os.environ.get(EMAIL_TO_ENV, "").split(",") if address.strip()]


def email_sender() -> str | None:
    return os.environ.get(EMAIL_FROM_ENV, "").strip() or None


def smtp_conn_id() -> str:
    return os.environ.get(SMTP_CONN_ENV, "").strip() or "smtp_default"


def run_deadline() -> timedelta:
    """How long a run may take from its start (queued) before it has overrun its window."""
    raw = os.environ.get(RUN_DEADLINE_ENV, "").strip()
    if not raw:
        return timedelta(hours=DEFAULT_RUN_DEADLINE_HOURS)
    try:
        hours = float(raw)
    except ValueError:
        hours = -1.0
    if hours <= 0:
        raise PatchpipeError(f"{RUN_DEADLINE_ENV}={raw!r}: expected a positive number of hours, e.g. 4 or 1.5")
    return timedelta(hours=hours)
