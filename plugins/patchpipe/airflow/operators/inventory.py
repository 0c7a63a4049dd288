from patchpipe.airflow.operators.base import StageOperator
from patchpipe.lifecycle.inventory import inventory


class InventoryOperator(StageOperator):
    """Resolve the image's production digest and read its installed packages from its layers."""

    stage = "inventory"

    def run(self, services, context):
        return inventory(services, self.image)
