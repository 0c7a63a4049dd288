"""Stage 2: inventory. Resolve the production tag's digest and read the installed packages from its layers."""

from __future__ import annotations

import logging

from patchpipe.packages.inventory import inventory_registry_image

log = logging.getLogger(__name__)


def inventory(svc, name: str) -> dict:
    ref = svc.target(name).ref
    digest, found = inventory_registry_image(svc.registry(ref), ref)
    log.info("%s: %s is %s, %d %s packages on %s", name, ref, digest, len(found.packages),
             found.package_manager, found.os.pretty_name)
    return {"image": name, "ref": str(ref), "digest": digest, "inventory": found.to_dict()}
