"""The fleet dashboard and Prometheus metrics, computed from the patch ledger. No Airflow here.

The Airflow plugin (``plugins/patchpipe_plugin.py``, ``patchpipe.airflow.dashboard_app``) only serves
what these modules compute, so the pages and the metrics can be tested on a plain ledger:

- ``snapshot``: one read of the ledger tables the dashboard needs, shared by every view of a request
- ``findings``: the types of open findings per image; ``findings_source``: where they come from
  (the ledger's findings snapshots), the only module that reads snapshot rows
- ``fleet`` / ``image_page``: what the fleet page and an image page show; ``rollbacks``: the
  rollback stages and their causes; ``api``: the same as JSON
- ``metrics``: the Prometheus collector; ``render``: the HTML (Jinja2, autoescaped)
"""
