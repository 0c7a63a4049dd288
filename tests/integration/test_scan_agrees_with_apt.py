"""patchpipe's plan for a lab image agrees with apt, and each upgrade names the findings it fixes.

apt is asked inside a container of the image, with the security suite as its only source, what it
would upgrade (``apt-get -s upgrade``). patchpipe reads the same image from the registry, the same
suite's index through ``fetch_advisories``' code, and plans (``lifecycle.assess``). The two must
list exactly the same packages at exactly the same versions.

Each upgrade then names the findings it clears, or carries the documented reason why it names none
(``lifecycle.assess``: no advisory in the store names that fix). The Debian Security Tracker cannot
be reached from this machine, and the recorded tracker data in shared/data covers none of the lab's
packages, so the store holds the recorded feeds plus one made-up advisory (feed ``hand``) naming
the perl security version apt offers today: perl-base's upgrade must name it, the others must name
nothing, and every ``fixed`` finding without an upgrade must be one the suite does not offer.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import docker
import pytest

from patchpipe import db
from patchpipe.advisories.records import Advisory, AffectedPackage, Severity, Status
from patchpipe.advisories.security_archive import fetch_security_index
from patchpipe.advisories.sources import SOURCES
from patchpipe.advisories.store import FeedOrigin, newest_security_versions, replace_feed, save_security_index
from patchpipe.images.registry import RegistryClient
from patchpipe.lifecycle.assess import assess
from patchpipe.packages.inventory import inventory_registry_image
from patchpipe.scan.match import match

pytestmark = pytest.mark.integration

IMAGE = "127.0.0.1:5000/vendor/app:2.4"
MIRROR = "http://deb.debian.org/debian-security"
DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "advisories"
APT_SECURITY_ONLY = " && ".join([
    "rm -f /etc/apt/sources.list.d/* /etc/apt/sources.list",
    f"echo 'deb {MIRROR} bookworm-security main' > /etc/apt/sources.list",
    "apt-get update -qq >/dev/null",
    "apt-get -s upgrade",
])


def apt_upgrades(image: str) -> dict[str, str]:
    """name -> version from apt-get -s's ``Inst NAME [OLD] (NEW Origin [arch])`` lines."""
    client = docker.from_env()
    try:
        client.images.pull(image)
        output = client.containers.run(image, ["-c", APT_SECURITY_ONLY], entrypoint="sh", user="root",
                                       remove=True).decode()
    finally:
        client.close()
    return {line.split()[1]: line.split("(", 1)[1].split()[0] for line in output.splitlines()
            if line.startswith("Inst ")}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    engine = db.make_engine(f"sqlite:///{tmp_path_factory.mktemp('store')}/advisories.db")
    db.create_schema(engine)
    save_security_index(engine, fetch_security_index("bookworm", mirror=MIRROR))
    at = datetime.now(timezone.utc)
    for feed, source, paths in (("osv-debian", "osv", sorted((DATA / "osv-debian").glob("*.json"))),
                                ("debian-tracker", "debian_tracker", [DATA / "debian-security-tracker" / "debian.json"])):
        records = []
        for path in paths:
            with path.open("rb") as payload:
                records += list(SOURCES[source].parse(payload, str(path)))
        replace_feed(engine, feed, FeedOrigin(source, str(paths[0])), records, at=at)
    yield engine
    engine.dispose()


def test_the_plan_is_what_apt_would_upgrade_and_each_upgrade_says_what_it_fixes(store):
    digest, found = inventory_registry_image(RegistryClient("127.0.0.1:5000"), IMAGE)
    perl_target = newest_security_versions(store, "bookworm", ["perl-base"]).get("perl-base")
    assert perl_target, "the lab's vendor image is built to have perl-base's security update pending"
    replace_feed(store, "hand", FeedOrigin("hand", __file__), [Advisory(
        "HAND-PERL-1", "hand", aliases=("CVE-2099-5151",), severity=Severity.HIGH,
        affected=(AffectedPackage("debian", "bookworm", "perl", Status.FIXED, perl_target),))],
        at=datetime.now(timezone.utc))

    plan = assess(SimpleNamespace(engine=store),
                  {"image": "vendor-app", "ref": IMAGE, "digest": digest, "inventory": found.to_dict()})

    expected = apt_upgrades(f"127.0.0.1:5000/vendor/app@{digest}")
    assert expected, "apt offers no security upgrade: the lab image is not the unpatched original"
    assert plan.targets() == expected
    fixes = {u.name: u.fixes for u in plan.upgrades}
    assert fixes.pop("perl-base") == ["CVE-2099-5151"]
    assert all(named == [] for named in fixes.values()), fixes  # no other advisory in the store names a fix

    planned = set(plan.targets())
    unplanned = [f for f in match(store, found) if f.fixable and f.package not in planned]
    offered = newest_security_versions(store, "bookworm", [f.package for f in unplanned])
    assert all(f.package not in offered for f in unplanned)
