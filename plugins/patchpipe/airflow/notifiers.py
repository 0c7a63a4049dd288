"""Airflow notifiers for patchpipe: a Slack-compatible webhook and email (through the smtp provider).

Both are ``BaseNotifier`` subclasses for one event each, so Airflow calls them the usual ways:

    on_failure_callback=[WebhookNotifier("failure"), EmailNotifier("failure")]        # a stage failed
    on_success_callback=[WebhookNotifier("rollback"), EmailNotifier("rollback")]      # rollback_* tasks
    ProductionApprovalOperator(..., notifiers=[WebhookNotifier("approval"), ...])     # waits for an owner
    on_success_callback / on_failure_callback=[WebhookNotifier("summary"), ...]       # the summary task
    DeadlineAlert(..., callback=AsyncCallback(WebhookNotifier, kwargs={"event": "deadline"}))

What a message says comes from ``patchpipe.notify`` (no Airflow), fed by the context and the ledger
(``notification_context``). A channel that is not configured is off, and says so in the task log:

- webhook: the ``patchpipe_webhook`` connection (its host is the full URL, e.g. Slack's incoming
  webhook; or ``https://host/path`` as a connection URI), else ``$PATCHPIPE_WEBHOOK_URL``. The URL
  is a secret: it is never logged, and errors name the connection and the host only.
- email: on when ``to=`` is given or ``$PATCHPIPE_NOTIFY_EMAIL`` lists recipients; failures,
  rollbacks and approvals also go to the image's ``owners`` from the fleet manifest. Sent through
  the smtp provider's ``SmtpHook`` on ``$PATCHPIPE_SMTP_CONN_ID`` (``smtp_default``); the sender is
  ``from_email=``, ``$PATCHPIPE_NOTIFY_FROM`` or the connection's ``from_email``.

A notification that cannot be delivered raises (Airflow logs a failed callback and leaves the task's
state alone), except for ``approval``: the approval operator calls its notifiers inside its own
``execute``, where raising would fail the approval task, so that one logs the error instead.

Deadline alerts run in the triggerer, where only ``async_notify`` is called; it runs the same
delivery in a worker thread (the SDK's connection lookups are safe from there).

The DAG files build notifiers when they are parsed; what delivers a notification (``requests``, the
ledger, the message builders) is imported when one is sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow.sdk import BaseHook
from airflow.sdk.bases.notifier import BaseNotifier

from patchpipe import db
from patchpipe.airflow.hooks import PatchpipeHook
from patchpipe.errors import PatchpipeError
from patchpipe.notify import settings as notify_settings
from patchpipe.notify.notification import KINDS, Notification

if TYPE_CHECKING:
    from patchpipe.ledger.store import Ledger

WEBHOOK_CONN_ID = "patchpipe_webhook"
_OWNER_EVENTS = frozenset({"failure", "rollback", "approval"})


class PatchpipeNotifier(BaseNotifier):
    """One event, one channel. Subclasses say whether the channel is on and how to deliver."""

    template_fields: Sequence[str] = ()  # never render ledger text as a Jinja template
    channel = "notification"

    def __init__(self, event: str, *, patchpipe_db_conn_id: str = PatchpipeHook.default_conn_name,
                 raise_errors: bool | None = None, **kwargs: Any):
        super().__init__(**kwargs)  # ``context=`` from a DeadlineAlert callback
        if event not in KINDS:
            raise ValueError(f"{type(self).__name__}: event {event!r} is not one of {', '.join(KINDS)}")
        self.event = event
        self.patchpipe_db_conn_id = patchpipe_db_conn_id
        self.raise_errors = event != "approval" if raise_errors is None else raise_errors

    def notify(self, context) -> None:
        from patchpipe.airflow.notification_context import build
        from patchpipe.ledger.store import Ledger

        opened: list[Ledger] = []

        def ledger() -> Ledger:  # opened only when the event needs it, closed after
            if not opened:
                engine = db.make_engine(PatchpipeHook(self.patchpipe_db_conn_id).database_url())
                db.create_schema(engine)
                opened.append(Ledger(engine))
            return opened[0]

        try:
            off = self.off_because()
            if off:
                self.log.info("%s notification (%s) is off: %s", self.channel, self.event, off)
                return
            notification = build(self.event, context, ledger)
            if notification is None:
                self.log.info("%s notification (%s): nothing to say", self.channel, self.event)
                return
            self.deliver(notification, context)
            self.log.info("%s notification sent: %s", self.channel, notification.title)
        except Exception as exc:
            if self.raise_errors:
                raise
            self.log.error("%s notification (%s) not delivered: %s", self.channel, self.event, exc)
        finally:
            for book in opened:
                book.engine.dispose()

    async def async_notify(self, context) -> None:
        await asyncio.to_thread(self.notify, context)

    def off_because(self) -> str | None:
        """Why this channel is off (not configured), or None when it is on."""
        raise NotImplementedError

    def deliver(self, notification: Notification, context) -> None:
        raise NotImplementedError


class WebhookNotifier(PatchpipeNotifier):
    """Posts Slack-compatible JSON (``{"text", "blocks"}``) to the configured webhook with ``requests``."""

    channel = "webhook"

    def __init__(self, event: str, *, webhook_conn_id: str = WEBHOOK_CONN_ID, timeout: float = 10.0,
                 **kwargs: Any):
        super().__init__(event, **kwargs)
        self.webhook_conn_id = webhook_conn_id
        self.timeout = timeout

    def off_because(self) -> str | None:
        if self._url() is None:
            return f"no Airflow connection {self.webhook_conn_id!r} and no ${notify_settings.WEBHOOK_URL_ENV}"
        return None

    def deliver(self, notification: Notification, context) -> None:
        import requests

        from patchpipe.notify.slack import slack_payload

        url = self._url()
        where = (f"webhook (connection {self.webhook_conn_id!r} or ${notify_settings.WEBHOOK_URL_ENV}, "
                 f"host {urlsplit(url or '').netloc or '?'})")
        try:
            response = requests.post(url, json=slack_payload(notification), timeout=self.timeout)
        except requests.RequestException as exc:  # its message would repeat the secret URL
            raise PatchpipeError(f"{where} is unreachable: {type(exc).__name__}") from None
        if not response.ok:
            raise PatchpipeError(f"{where} answered HTTP {response.status_code}: {response.text[:200]}")

    def _url(self) -> str | None:
        conn = _connection(self.webhook_conn_id)
        if conn is not None:
            return _webhook_url(conn)
        return notify_settings.webhook_url()


class EmailNotifier(PatchpipeNotifier):
    """Sends an HTML email through the smtp provider's ``SmtpHook``."""

    channel = "email"

    def __init__(self, event: str, *, to: str | Iterable[str] | None = None, from_email: str | None = None,
                 smtp_conn_id: str | None = None, include_owners: bool = True, **kwargs: Any):
        super().__init__(event, **kwargs)
        self.to = [to] if isinstance(to, str) else list(to or [])
        self.from_email = from_email
        self.smtp_conn_id = smtp_conn_id
        self.include_owners = include_owners

    def off_because(self) -> str | None:
        if not self.to and not notify_settings.email_recipients():
            return f"no recipients (to= or ${notify_settings.EMAIL_TO_ENV})"
        return None

    def deliver(self, notification: Notification, context) -> None:
        from airflow.providers.smtp.hooks.smtp import SmtpHook

        from patchpipe.notify.email import email_html, email_subject

        recipients = self.recipients(context)
        conn_id = self.smtp_conn_id or notify_settings.smtp_conn_id()
        if _connection(conn_id) is None:
            raise PatchpipeError(f"email notification ({self.event}): Airflow connection {conn_id!r} does not exist; "
                                 f"create it or set ${notify_settings.SMTP_CONN_ENV}")
        with SmtpHook(smtp_conn_id=conn_id) as hook:
            hook.send_email_smtp(to=recipients, subject=email_subject(notification),
                                 html_content=email_html(notification),
                                 from_email=self.from_email or notify_settings.email_sender())

    def recipients(self, context) -> list[str]:
        """``to`` and ``$PATCHPIPE_NOTIFY_EMAIL``, plus the image's owners for image events; no duplicates."""
        from patchpipe.airflow.notification_context import image_owners, task_image

        found = [*self.to, *notify_settings.email_recipients()]
        image = task_image(context)
        if self.include_owners and self.event in _OWNER_EVENTS and image:
            found += image_owners(context.get("task"), image)
        return list(dict.fromkeys(found))


def notify(event: str) -> list[PatchpipeNotifier]:
    """Both channels for ``event``; each stays silent until it is configured."""
    return [WebhookNotifier(event), EmailNotifier(event)]


def _connection(conn_id: str):
    try:
        return BaseHook.get_connection(conn_id)
    except Exception:  # AirflowNotFoundException, or no Airflow metadata at all
        return None


def _webhook_url(conn) -> str | None:
    """The full URL from a connection: its host when that is a URL (the JSON form), else rebuilt
    from the URI form ``https://host:port/path`` (Airflow keeps the path in ``schema``)."""
    host = (conn.host or "").strip()
    if "://" in host:
        return host
    if not host:
        return None
    scheme = conn.conn_type if conn.conn_type in ("http", "https") else "https"
    port = f":{conn.port}" if conn.port else ""
    path = (conn.schema or "").lstrip("/")
    return f"{scheme}://{host}{port}/{path}"
