"""Parse os-release (``etc/os-release`` or ``usr/lib/os-release``): shell-style ``KEY=value`` lines."""

from __future__ import annotations

import shlex
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class OsRelease:
    id: str
    version_id: str | None = None
    version_codename: str | None = None
    pretty_name: str | None = None
    id_like: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {**asdict(self), "id_like": list(self.id_like)}

    @classmethod
    def from_dict(cls, data: dict) -> "OsRelease":
        return cls(**{**data, "id_like": tuple(data.get("id_like") or ())})


def parse_os_release(content: bytes | str) -> OsRelease:
    """The distribution an os-release file describes. Unknown keys, comments and malformed lines are
    ignored, as systemd does; ID defaults to ``linux`` as the specification says."""
    text = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, raw = line.split("=", 1)
        values[key.strip()] = _unquote(raw)
    return OsRelease(
        id=values.get("ID") or "linux",
        version_id=values.get("VERSION_ID") or None,
        version_codename=values.get("VERSION_CODENAME") or None,
        pretty_name=values.get("PRETTY_NAME") or None,
        id_like=tuple(values.get("ID_LIKE", "").split()),
    )


def _unquote(raw: str) -> str:
    try:
        return " ".join(shlex.split(raw, comments=True))
    except ValueError:  # an unbalanced quote: keep the text rather than lose the line
        return raw.strip().strip("\"'")
