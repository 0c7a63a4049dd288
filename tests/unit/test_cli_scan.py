"""``patchpipe scan`` (``patchpipe.cli_scan``) on an unpacked root filesystem and a real SQLite store.

The store holds the real Debian tracker file, KEV catalog and EPSS sample from shared/data/advisories,
plus one made-up record (feed ``hand``): Chromium's CVE-2024-7965 for bookworm, a real KEV entry with a
real EPSS score, with an invented Debian fix version.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from patchpipe.advisories.records import Advisory, AffectedPackage, Severity, Status
from patchpipe.advisories.sources import SOURCES
from patchpipe.advisories.store import FeedOrigin, replace_feed
from patchpipe.cli_scan import add_scan_command
from patchpipe.db import create_schema, make_engine
from patchpipe.errors import PatchpipeError

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "advisories"
AT = datetime(2026, 11, 24, 6, 0, tzinfo=timezone.utc)
BOOKWORM_OS_RELEASE = ('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n'
                       'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n')
STATUS = """\
Package: chromium
Status: install ok installed
Architecture: amd64
Version: 97.0.4692.99-1

Package: chromium-common
Status: install ok installed
Architecture: amd64
Source: chromium
Version: 97.0.4692.99-1

Package: libsope1
Status: install ok installed
Architecture: amd64
Source: sope (5.8.0-1)
Version: 5.8.0-1+deb12u1+b1

Package: bash
Status: install ok installed
Architecture: amd64
Version: 5.2.15-2+b2
"""
CHROMIUM_KEV = Advisory("CVE-2024-7965", "hand", affected=(
    AffectedPackage("debian", "bookworm", "chromium", Status.FIXED, "128.0.6613.84-1~deb12u1",
                    severity=Severity.HIGH),))


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('store') / 'patchpipe.db'}"
    engine = make_engine(url)
    create_schema(engine)
    for feed, source, path in [
        ("debian-tracker", "debian_tracker", DATA / "debian-security-tracker" / "debian.json"),
        ("kev", "kev", DATA / "cisa-kev" / "known_exploited_vulnerabilities.json"),
        ("epss", "epss", DATA / "epss" / "epss_scores-current.sample.csv"),
    ]:
        with path.open("rb") as payload:
            replace_feed(engine, feed, FeedOrigin(source, str(path)), SOURCES[source].parse(payload, str(path)), at=AT)
    replace_feed(engine, "hand", FeedOrigin("hand", "test_cli_scan.py"), [CHROMIUM_KEV], at=AT)
    engine.dispose()
    return url


def rootfs(tmp_path: Path, os_release: str = BOOKWORM_OS_RELEASE, status: str = STATUS) -> Path:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "os-release").write_text(os_release)
    (tmp_path / "var" / "lib" / "dpkg").mkdir(parents=True)
    (tmp_path / "var" / "lib" / "dpkg" / "status").write_text(status)
    return tmp_path


def scan(*argv: str | Path) -> int:
    parser = argparse.ArgumentParser(prog="patchpipe")
    add_scan_command(parser.add_subparsers())
    args = parser.parse_args(["scan", *map(str, argv)])
    return args.command(args)


def test_json_lists_the_findings_most_urgent_first(tmp_path, db, capsys) -> None:
    assert scan("--rootfs", rootfs(tmp_path), "--db", db) == 0
    document = json.loads(capsys.readouterr().out)

    assert document["os"] == {"family": "debian", "version": "12"}
    assert document["packages"] == 4
    assert [(f["id"], f["package"]) for f in document["findings"]] == [
        ("CVE-2024-7965", "chromium"), ("CVE-2024-7965", "chromium-common"),  # KEV first
        ("CVE-2022-0456", "chromium"), ("CVE-2022-0456", "chromium-common"),
        ("CVE-2025-53603", "libsope1"),
    ]
    assert document["findings"][0] == {
        "id": "CVE-2024-7965", "aliases": [], "package": "chromium", "source_package": "chromium",
        "installed": "97.0.4692.99-1", "fixed": "128.0.6613.84-1~deb12u1", "status": "fixed",
        "severity": "high", "kev": True, "epss": 0.18528,
    }
    sope = document["findings"][-1]
    assert (sope["source_package"], sope["installed"], sope["fixed"], sope["kev"], sope["epss"]) == \
        ("sope", "5.8.0-1+deb12u1+b1", "5.8.0-1+deb12u1", False, None)


def test_table_has_a_heading_and_one_line_per_finding(tmp_path, db, capsys) -> None:
    assert scan("--rootfs", rootfs(tmp_path), "--db", db, "--format", "table") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "debian 12 (bookworm): 4 packages, 5 findings"
    assert lines[1].split() == ["ID", "PACKAGE", "INSTALLED", "FIXED", "STATUS", "SEVERITY", "KEV", "EPSS"]
    assert lines[2].split() == ["CVE-2024-7965", "chromium", "97.0.4692.99-1", "128.0.6613.84-1~deb12u1", "fixed",
                                "high", "yes", "0.18528"]
    assert len(lines) == 7


def test_a_patched_system_has_no_findings(tmp_path, db, capsys) -> None:
    status = "Package: bash\nStatus: install ok installed\nArchitecture: amd64\nVersion: 5.2.15-2+b2\n"
    assert scan("--rootfs", rootfs(tmp_path, status=status), "--db", db) == 0
    assert json.loads(capsys.readouterr().out)["findings"] == []


def test_a_system_without_advisories_is_a_user_error(tmp_path, db) -> None:
    with pytest.raises(PatchpipeError, match="no advisories for fedora"):
        scan("--rootfs", rootfs(tmp_path, os_release="ID=fedora\nVERSION_ID=40\n"), "--db", db)


def test_a_directory_without_os_release_is_a_user_error(tmp_path, db) -> None:
    with pytest.raises(PatchpipeError, match="no os-release"):
        scan("--rootfs", tmp_path, "--db", db)
