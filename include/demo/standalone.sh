#!/usr/bin/env bash
# `make up`: Airflow standalone (api-server, scheduler, dag-processor, triggerer; SQLite, LocalExecutor)
# with this project's DAGs and plugins, DAGs unpaused, the login printed. The Makefile sets
# AIRFLOW_HOME and the DAGs and plugins folders.
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export PATH="$REPO_ROOT/.venv/bin:$PATH"  # standalone starts its components as `airflow ...`
export AIRFLOW__CORE__EXECUTOR=${AIRFLOW__CORE__EXECUTOR:-LocalExecutor}
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS:-admin:admin}
# A fleet of more than Airflow's default 1024 images needs a higher map limit (README: Running it).
export AIRFLOW__CORE__MAX_MAP_LENGTH=${AIRFLOW__CORE__MAX_MAP_LENGTH:-4096}
mkdir -p "$AIRFLOW_HOME"

passwords=$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated
if [ ! -s "$passwords" ]; then
  printf '{"admin": "%s"}\n' "$(python3 -c 'import secrets; print(secrets.token_urlsafe(12))')" >"$passwords"
fi

airflow db migrate >"$AIRFLOW_HOME/db-migrate.log" 2>&1
airflow pools import "$REPO_ROOT/include/airflow/pools.json" >/dev/null
airflow dags reserialize >"$AIRFLOW_HOME/dags-reserialize.log" 2>&1
for dag in $(airflow dags list -o json 2>/dev/null | python3 -c 'import json,sys; text=sys.stdin.read(); print(*(d["dag_id"] for d in json.loads(text[text.index("[{"):])))'); do
  airflow dags unpause "$dag" >/dev/null 2>&1 && echo "patchpipe: $dag unpaused"
done
echo "patchpipe: Airflow UI on http://localhost:8080  login: admin / $(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['admin'])" "$passwords")"
exec airflow standalone
