#!/usr/bin/env bash
# `make up`: Airflow standalone (api-server, scheduler, dag-processor, triggerer; SQLite, LocalExecutor)
# with this project's DAGs and plugins, DAGs unpaused. The Makefile sets AIRFLOW_HOME and the folders.
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False
export AIRFLOW__CORE__EXECUTOR=${AIRFLOW__CORE__EXECUTOR:-LocalExecutor}
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS:-admin:admin}
mkdir -p "$AIRFLOW_HOME"
echo "patchpipe: Airflow UI on http://localhost:8080 ; the login is printed below as 'Password for user'"
echo "patchpipe: passwords also in $AIRFLOW_HOME/simple_auth_manager_passwords.json.generated"
exec "$REPO_ROOT/.venv/bin/airflow" standalone
