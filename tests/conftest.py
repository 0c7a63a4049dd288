"""Fixtures shared by unit and integration tests."""

from pathlib import Path

import pytest

from patchpipe.db import create_schema, make_engine
from support.postgres import postgres_server  # noqa: F401  (a session fixture)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def patchpipe_engine(request: pytest.FixtureRequest, tmp_path: Path):
    """A fresh patchpipe database with every table: SQLite, and a real PostgreSQL server (integration)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'patchpipe.db'}"
    else:
        url = request.getfixturevalue("postgres_server").create_database("patchpipe")
    engine = make_engine(url)
    create_schema(engine)
    yield engine
    engine.dispose()
