from patchpipe.airflow.operators.base import StageOperator


class InventoryOperator(StageOperator):
    """Resolve the image's production digest and read its installed packages from its layers."""

    stage = "inventory"

    def run(self, services, context):
        from patchpipe.lifecycle.inventory import inventory

        return inventory(services, self.image)
