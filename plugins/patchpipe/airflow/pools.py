"""The Airflow pools patchpipe's tasks run in; ``include/airflow/pools.json`` creates them
(``airflow pools import``, done by ``make demo``, ``make up`` and the tests)."""

BUILDS = "patchpipe_builds"  # image builds: the Docker Engine's CPU and disk
REGISTRY_WRITES = "patchpipe_registry_writes"  # pushes and tag moves
