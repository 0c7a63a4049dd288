"""One operator per lifecycle stage, each a few lines over ``patchpipe.lifecycle``.

Each imports its stage code inside ``run``, not at the top: the dag-processor imports these modules
again on every parse of the DAG files, and the stage code (with the manifest's models, the Docker
client and ``requests``) is most of an import's cost (``tests/unit/test_dag_integrity.py`` checks).
"""

from patchpipe.airflow.operators.analyze import AnalysisOperator
from patchpipe.airflow.operators.approval import ProductionApprovalOperator
from patchpipe.airflow.operators.assess import AssessOperator
from patchpipe.airflow.operators.deploy import DeployOperator, RollbackOperator
from patchpipe.airflow.operators.fetch_advisories import FetchAdvisoriesOperator
from patchpipe.airflow.operators.inventory import InventoryOperator
from patchpipe.airflow.operators.patch import PatchOperator
from patchpipe.airflow.operators.promote import PromoteOperator, RollbackProductionOperator
from patchpipe.airflow.operators.push import PushOperator
from patchpipe.airflow.operators.record import RecordOperator
from patchpipe.airflow.operators.run import SelectTargetsOperator, StartRunOperator, SummaryOperator
from patchpipe.airflow.operators.scan import ScanOperator
from patchpipe.airflow.operators.triage import TriageOperator
from patchpipe.airflow.operators.trivy import TrivyScanOperator
from patchpipe.airflow.operators.verify import VerifyOperator

__all__ = [
    "AnalysisOperator", "AssessOperator", "DeployOperator", "FetchAdvisoriesOperator", "InventoryOperator",
    "PatchOperator", "ProductionApprovalOperator", "PromoteOperator", "PushOperator", "RecordOperator",
    "RollbackOperator", "RollbackProductionOperator", "ScanOperator", "SelectTargetsOperator", "StartRunOperator",
    "SummaryOperator", "TriageOperator", "TrivyScanOperator", "VerifyOperator",
]
