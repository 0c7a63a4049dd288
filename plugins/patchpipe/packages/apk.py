"""Read apk's database, ``lib/apk/db/installed``: one paragraph per package of ``X:value`` lines
(P name, V version, A architecture, o origin, the source package)."""

from __future__ import annotations

from patchpipe.errors import PatchpipeError
from patchpipe.packages.dpkg import InstalledPackage


def parse_apk_installed(content: bytes, source: str = "lib/apk/db/installed") -> list[InstalledPackage]:
    """The packages of an apk installed database; ``source`` names the file in messages."""
    packages = []
    fields: dict[str, str] = {}
    start = 1
    lines = content.decode("utf-8", "replace").splitlines()
    for number, line in enumerate([*lines, ""], start=1):
        if not line.strip():
            if fields:
                packages.append(_package(fields, source, start))
            fields, start = {}, number + 1
            continue
        if len(line) < 2 or line[1] != ":":
            name = fields.get("P", "?")
            raise PatchpipeError(f"{source}: line {number} (package {name}) is not an 'X:value' line: {line[:80]!r}")
        fields.setdefault(line[0], line[2:])  # file lines (F:, R:, Z:...) repeat; the first P/V/A/o is the one
    return packages


def _package(fields: dict[str, str], source: str, line: int) -> InstalledPackage:
    name = fields.get("P", "").strip()
    if not name:
        raise PatchpipeError(f"{source}: the package starting at line {line} has no P: (name) line")
    version = fields.get("V", "").strip()
    if not version:
        raise PatchpipeError(f"{source}: package {name} has no V: (version) line")
    return InstalledPackage(
        name=name,
        version=version,
        architecture=fields.get("A", "").strip(),
        source_name=fields.get("o", "").strip() or name,
        # An origin's subpackages are built in the same run, so they share its version.
        source_version=version,
    )
