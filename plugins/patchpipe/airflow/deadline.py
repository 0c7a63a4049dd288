"""The run's deadline: Airflow 3's DeadlineAlert, calling patchpipe's notifiers when a run overruns.

``DeadlineAlert`` (``airflow.sdk.definitions.deadline``) works with a notifier class as its callback:
when the scheduler finds a run still going past ``queued_at + interval``, it queues the callback,
and the triggerer (``AsyncCallback``) runs ``await Notifier(**kwargs, context={"dag_run": {...},
"deadline": {...}})``, which is ``BaseNotifier.async_notify``. The reference is the time the run was
queued because that exists for every kind of run; ``logical_date`` is None for manual and
asset-triggered runs, and for a scheduled run it is the start of its data interval, a week back.

Limits: the scheduler and the triggerer evaluate deadlines, so ``airflow dags test`` (no scheduler)
never fires one; ``airflow standalone`` and a real deployment do. The context carries the DAG run's
REST fields, not a task instance. The summary task's notification also reports an overrun of the
same limit (``notify.messages.overrun``), so a run that ends late is called out even where no
scheduler evaluates deadlines.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk.definitions.callback import AsyncCallback
from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference

from patchpipe.airflow.notifiers import EmailNotifier, WebhookNotifier
from patchpipe.notify.settings import run_deadline


def run_deadline_alerts(interval: timedelta | None = None) -> list[DeadlineAlert]:
    """One DeadlineAlert per channel (webhook, email), ``interval`` (default
    ``$PATCHPIPE_RUN_DEADLINE_HOURS``, 4 h) after the run was queued. A channel that is not
    configured logs that it is off when the alert fires."""
    after = interval if interval is not None else run_deadline()
    return [
        DeadlineAlert(reference=DeadlineReference.DAGRUN_QUEUED_AT, interval=after,
                      callback=AsyncCallback(notifier, kwargs={"event": "deadline"}),
                      name=f"patchpipe run deadline ({notifier.channel})")
        for notifier in (WebhookNotifier, EmailNotifier)
    ]
