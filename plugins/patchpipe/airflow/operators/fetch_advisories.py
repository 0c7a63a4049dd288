from patchpipe.airflow.operators.base import StageOperator


class FetchAdvisoriesOperator(StageOperator):
    """Fetch the security archive of every release in the manifest into the advisory store."""

    stage = "fetch_advisories"

    def run(self, services, context):
        from patchpipe.lifecycle.fetch_advisories import fetch_advisories

        return fetch_advisories(services)
