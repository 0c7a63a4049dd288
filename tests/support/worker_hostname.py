"""``[core] hostname_callable`` for Celery workers that share one machine in a test.

Airflow records the hostname a task ran on (``task_instance.hostname``). Two workers on one machine
would both record its FQDN; each test worker instead sets ``PATCHPIPE_TEST_WORKER`` to its own name,
so the metadata database says which worker ran which task.
"""

import os


def hostname() -> str:
    return os.environ["PATCHPIPE_TEST_WORKER"]
