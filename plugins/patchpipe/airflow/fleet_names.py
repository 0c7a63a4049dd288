"""The fleet's image names for the trigger form, kept in a cache file keyed by the manifest's content.

The dag-processor parses ``patch_lifecycle`` again every 30 seconds, in a fresh process each time, and
reading and validating a 1,000-image manifest takes most of a second. So the names are taken from
``<cache>/fleet-names-<hash of the manifest's path>.json`` while the manifest's SHA-256 matches the one
recorded there; otherwise the manifest is loaded and the file rewritten. A cache that cannot be
read or written only costs that load.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from patchpipe import settings
from patchpipe.errors import PatchpipeError


def image_names(path: Path) -> list[str]:
    """The names of the manifest's images; empty when it cannot be read or is invalid."""
    try:
        content = path.read_bytes()
    except OSError:
        return []
    digest = hashlib.sha256(content).hexdigest()
    where = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
    cache = settings.cache_dir() / f"fleet-names-{where}.json"
    cached = _read(cache)
    if cached.get("manifest_sha256") == digest and isinstance(cached.get("names"), list):
        return cached["names"]
    from patchpipe.fleet import parse_fleet

    try:
        names = parse_fleet(content.decode("utf-8"), source=str(path), manifest_dir=path.parent).image_names
    except (PatchpipeError, UnicodeDecodeError):
        return []
    _write(cache, {"manifest": str(path.resolve()), "manifest_sha256": digest, "names": names})
    return names


def _read(cache: Path) -> dict:
    try:
        found = json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _write(cache: Path, document: dict) -> None:
    """Whole or not at all: parses in parallel may write it at once."""
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=cache.parent, prefix=f".{cache.name}.",
                                         delete=False) as temporary:
            json.dump(document, temporary)
        os.replace(temporary.name, cache)
    except OSError:
        return
