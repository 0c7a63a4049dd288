"""Airflow adapters: a hook that builds the core's Services from connections, and one operator per stage."""
