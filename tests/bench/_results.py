"""Merge one benchmark's figures into bench/results.json (gitignored): one key per benchmark."""

from __future__ import annotations

import json
from pathlib import Path

RESULTS_FILE = Path(__file__).resolve().parents[2] / "bench" / "results.json"


def record_results(key: str, figures: dict, path: Path = RESULTS_FILE) -> Path:
    """Replace ``key`` in the results file with ``figures``, keeping the other benchmarks' keys."""
    results = json.loads(path.read_text()) if path.exists() else {}
    results[key] = figures
    path.parent.mkdir(parents=True, exist_ok=True)
    unfinished = path.with_suffix(".json.tmp")
    unfinished.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    unfinished.replace(path)
    return path
