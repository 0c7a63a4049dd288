"""Run-level tasks: open the run in the ledger, choose its targets, close it with a summary."""

from airflow.sdk.exceptions import AirflowFailException

from patchpipe.airflow.operators.base import RUN_LEVEL, StageOperator
from patchpipe.airflow.run_info import run_facts, run_options, window_time
from patchpipe.errors import PatchpipeError
from patchpipe.ledger.models import ImageStatus, RunStatus, StageOutcome
from patchpipe.lifecycle.select import check_map_length, select_bases, select_images
from patchpipe.lifecycle.summary import FAILED, format_summary


class StartRunOperator(StageOperator):
    """Open the run in the patch ledger (a rerun reopens it)."""

    stage = "start_run"

    def run(self, services, context):
        facts = run_facts(context)
        services.ledger.start_run(facts.pop("run_id"), **facts)
        return {"run_type": facts["run_type"]}


class SelectTargetsOperator(StageOperator):
    """The names to patch this run, mapped over: the images the run's Params and the patch windows
    allow (each image left out is recorded as a no-op saying why), or the bases they are built on.

    More bases than ``[core] max_map_length`` fail here, saying how to raise it, before Airflow
    refuses the list with "pushed value is too large to map as a downstream's dependency". The
    images are not mapped over: triage is, over those it passes on (it checks the limit)."""

    template_fields = (*StageOperator.template_fields, "kind")

    def __init__(self, *, kind: str, **kwargs):
        super().__init__(**kwargs)
        self.kind = kind
        self.stage = f"select_{kind}"

    def run(self, services, context):
        fleet = services.fleet
        images, left_out = select_images(fleet, run_options(context, fleet), window_time(context))
        if self.kind == "bases":
            bases = select_bases(fleet, images)
            check_map_length(bases, "bases", max_map_length())
            return bases
        for name, reason in left_out.items():
            self.log.info("%s: left out: %s", name, reason)
            services.ledger.record_image(context["run_id"], name, kind=fleet.image(name).kind,
                                         status=ImageStatus.NOOP, failure_reason=reason)
        return images


def max_map_length() -> int:
    """Airflow's ``[core] max_map_length`` as this worker sees it (the api-server enforces its own)."""
    from airflow.sdk.configuration import conf

    return conf.getint("core", "max_map_length", fallback=1024)


class SummaryOperator(StageOperator):
    """Always runs: prints every image's outcome, closes the run, writes its report (Markdown and HTML),
    and fails the run if an image or a run-level stage (fetch_advisories, select_images...) failed."""

    stage = "summary"

    def __init__(self, **kwargs):
        kwargs.setdefault("trigger_rule", "all_done")
        super().__init__(**kwargs)

    def run(self, services, context):
        from patchpipe.reports import write_report

        records = services.ledger.run_summary(context["run_id"])
        stages = services.ledger.stage_results(context["run_id"])
        self.log.info("patch run %s\n%s", context["run_id"], format_summary(records, stages))
        failed = [r.image for r in records if r.status in FAILED]
        # A run-level stage that failed (fetch_advisories, select_images...) left no image to record;
        # only its latest attempt counts, so a cleared and rerun stage that passed does not.
        latest = {s.stage: s for s in stages if s.image == RUN_LEVEL and s.stage != self.stage}
        run_failures = [s for s in latest.values() if s.outcome == StageOutcome.FAILED]
        services.ledger.finish_run(context["run_id"],
                                   RunStatus.FAILED if failed or run_failures else RunStatus.SUCCESS)
        try:
            files = write_report(services.ledger, context["run_id"])
            self.log.info("report: %s and %s", files.markdown, files.html)
        except PatchpipeError as error:  # a report that cannot be written must not hide the run's outcome
            self.log.warning("no report: %s", error)
        if run_failures:
            first = run_failures[0]
            raise AirflowFailException(f"{first.stage} failed: {(first.detail or {}).get('error', 'see its log')}")
        if failed:
            raise AirflowFailException(f"images failed: {', '.join(failed)} (see the ledger for why)")
        return {r.image: r.status.value for r in records}
