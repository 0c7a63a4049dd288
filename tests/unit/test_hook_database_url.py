"""The ledger's database from an Airflow connection (``PatchpipeHook.database_url``)."""

from __future__ import annotations

from airflow.models.connection import Connection
from sqlalchemy import make_url

from patchpipe.airflow.hooks import sqlalchemy_url


def url_of(uri: str) -> str:
    return sqlalchemy_url(Connection(conn_id="patchpipe_db", uri=uri))


def test_a_sqlite_connection_keeps_its_absolute_path() -> None:
    assert url_of("sqlite:////var/lib/patchpipe/ledger.db") == "sqlite:////var/lib/patchpipe/ledger.db"


def test_a_postgres_connection_uses_the_psycopg_driver_with_its_credentials() -> None:
    url = make_url(url_of("postgres://patchpipe:s%40cret@db.example.org:5433/ledger"))
    assert (url.drivername, url.username, url.password, url.host, url.port, url.database) == (
        "postgresql+psycopg", "patchpipe", "s@cret", "db.example.org", 5433, "ledger")
    assert make_url(url_of("postgresql://u:p@h/db")).drivername == "postgresql+psycopg"
