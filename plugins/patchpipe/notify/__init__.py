"""Notifications without Airflow: what a failure, rollback, approval request, run summary or missed
deadline message says (``messages``), and how it looks on each channel (``slack``, ``email``).

The Airflow notifiers (``patchpipe.airflow.notifiers``) read the context and the ledger, call these
builders, and deliver the result.
"""
