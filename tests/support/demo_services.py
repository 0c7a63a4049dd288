"""The core services on the demo fleet (include/fleet.yaml) and a fresh SQLite ledger: no Docker, no Airflow."""

from __future__ import annotations

from pathlib import Path

from patchpipe.db import create_schema, make_engine
from patchpipe.fleet import load_fleet
from patchpipe.lifecycle.services import Services

ROOT = Path(__file__).resolve().parents[2]


def demo_services(directory: Path) -> Services:
    """Services whose ledger is ``directory``/ledger.db; dispose of ``services.engine`` when done."""
    engine = make_engine(f"sqlite:///{directory / 'ledger.db'}")
    create_schema(engine)
    return Services(fleet=load_fleet(ROOT / "include" / "fleet.yaml"), manifest_dir=ROOT / "include",
                    engine=engine, docker_factory=lambda: None)
