-- The patch ledger and advisory store get their own database next to Airflow's metadata DB.
CREATE DATABASE patchpipe;
