from patchpipe.airflow.operators.base import StageOperator
from patchpipe.lifecycle.fetch_advisories import fetch_advisories


class FetchAdvisoriesOperator(StageOperator):
    """Fetch the security archive of every release in the manifest into the advisory store."""

    stage = "fetch_advisories"

    def run(self, services, context):
        return fetch_advisories(services)
