"""The Assets patchpipe's DAGs exchange."""

from airflow.sdk import Asset

# Emitted by advisory_sync; its extra says what changed. patch_lifecycle runs on it (emergency runs).
ADVISORIES = Asset("patchpipe://advisories")
