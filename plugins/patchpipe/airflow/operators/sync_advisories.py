from airflow.sdk import BaseOperator

from patchpipe import db
from patchpipe.airflow.hooks import PatchpipeHook


class SyncAdvisoriesOperator(BaseOperator):
    """Sync every configured advisory feed into the store; the outlet Asset's event says what changed.

    A feed that is down keeps its last good data (a warning); the task fails only when a feed's data
    is older than the maximum age (``PATCHPIPE_ADVISORY_MAX_AGE_HOURS``).
    """

    template_fields = ("feeds",)

    def __init__(self, *, feeds: list[str] | None = None,
                 patchpipe_db_conn_id: str = PatchpipeHook.default_conn_name, **kwargs):
        super().__init__(**kwargs)
        self.feeds = feeds
        self.patchpipe_db_conn_id = patchpipe_db_conn_id

    def execute(self, context):
        from patchpipe.advisories.settings import SyncSettings
        from patchpipe.advisories.sync import sync

        engine = db.make_engine(PatchpipeHook(self.patchpipe_db_conn_id).database_url())
        db.create_schema(engine)
        report = sync(engine, self.feeds or None, SyncSettings.from_env())
        extra = report.asset_extra()
        for outlet in self.outlets:
            context["outlet_events"][outlet].extra = extra
        for result in report.results:
            self.log.info("%s: %s", result.feed, result.outcome)
        return {"stale": extra["stale"], "feeds": {name: feed["outcome"] for name, feed in extra["feeds"].items()}}
