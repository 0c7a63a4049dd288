"""The patch lifecycle, one module per stage, in the order an image goes through them:

fetch_advisories -> inventory -> assess -> patch -> verify -> push -> deploy (staging) -> smoke
-> promote (production) -> smoke -> record; rollback when a rollout or its smoke test fails.

Each stage takes plain data (what the previous stage returned) and a Services object, and returns
plain data, so the same code runs under Airflow operators, the CLI and tests.
"""
