"""Settings read from the environment, with defaults that work in the lab."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def fleet_path() -> Path:
    """``PATCHPIPE_FLEET``, else the demo fleet next to the plugins folder."""
    return Path(os.environ.get("PATCHPIPE_FLEET") or REPO_ROOT / "include" / "fleet.yaml")


def deploy_deadline_seconds() -> float:
    """How long a rollout may take before it counts as failed (``PATCHPIPE_DEPLOY_DEADLINE``, default 600)."""
    return float(os.environ.get("PATCHPIPE_DEPLOY_DEADLINE", "600"))


def cache_dir() -> Path:
    """Where patchpipe keeps what it can rebuild (``PATCHPIPE_CACHE``, default ``~/.cache/patchpipe``)."""
    return Path(os.environ.get("PATCHPIPE_CACHE") or Path.home() / ".cache" / "patchpipe").expanduser()
