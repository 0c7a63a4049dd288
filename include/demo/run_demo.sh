#!/usr/bin/env bash
# `make demo`: one headless patch_lifecycle run on the lab, then the ledger's summary of it.
# Expects the lab up (make lab-up) and the virtualenv (make venv); the Makefile sets AIRFLOW_HOME.
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=$REPO_ROOT/.venv/bin
LOG=$AIRFLOW_HOME/demo-run.log
# A fleet of more than Airflow's default 1024 images needs a higher map limit (README: Running it).
export AIRFLOW__CORE__MAX_MAP_LENGTH=${AIRFLOW__CORE__MAX_MAP_LENGTH:-4096}
mkdir -p "$AIRFLOW_HOME"

"$BIN/airflow" db migrate >"$AIRFLOW_HOME/db-migrate.log" 2>&1 \
  || { tail -20 "$AIRFLOW_HOME/db-migrate.log"; echo "demo: airflow db migrate failed" >&2; exit 1; }
"$BIN/airflow" pools import "$REPO_ROOT/include/airflow/pools.json" >/dev/null \
  || { echo "demo: airflow pools import failed" >&2; exit 1; }
echo "demo: running patch_lifecycle (Airflow log: $LOG)"
started=$SECONDS
if "$BIN/airflow" dags test patch_lifecycle >"$LOG" 2>&1; then status=0; else status=$?; fi
echo "demo: run finished in $((SECONDS - started)) s"
echo
"$BIN/patchpipe" ledger summary || true
if [ "$status" -ne 0 ]; then
  echo
  echo "demo: the run failed; the last lines of $LOG:" >&2
  grep -E "ERROR|Error|error" "$LOG" | tail -15 >&2 || true
fi
exit "$status"
