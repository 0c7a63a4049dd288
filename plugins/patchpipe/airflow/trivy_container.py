"""The container TrivyScanOperator runs Trivy in; its own module so that the docker provider is
imported when Trivy runs, not with every parse of the DAG files."""

import json

from airflow.providers.docker.operators.docker import DockerOperator


class TrivyContainer(DockerOperator):
    """DockerOperator whose retrieved output file is JSON (Trivy's report), not a pickle."""

    pickling_library = json
