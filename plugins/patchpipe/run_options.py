"""What one run was asked to do: the Params of the trigger form, checked against the fleet.

- ``images``: the fleet images to consider (empty: all of them).
- ``dry_run``: inventory and plan only; nothing is built, pushed or deployed (status ``planned``).
- ``skip_promotion``: patch, push and prove the candidate in staging, but leave production alone.
- ``force_rebuild``: build a new candidate without the build cache, even when one for the same
  plan exists.
- ``emergency``: ignore the images' patch windows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from patchpipe.errors import PatchpipeError


@dataclass(frozen=True)
class RunOptions:
    images: tuple[str, ...] = ()
    dry_run: bool = False
    skip_promotion: bool = False
    force_rebuild: bool = False
    emergency: bool = False

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None, known_images: list[str]) -> RunOptions:
        params = params or {}
        images = tuple(params.get("images") or ())
        unknown = sorted(set(images) - set(known_images))
        if unknown:
            raise PatchpipeError(f"run parameter images: no image named {', '.join(map(repr, unknown))} in the "
                                 f"fleet; known: {', '.join(known_images)}")
        flags = {name: params.get(name, False) for name in ("dry_run", "skip_promotion", "force_rebuild", "emergency")}
        for name, value in flags.items():
            if not isinstance(value, bool):
                raise PatchpipeError(f"run parameter {name}: must be true or false (got {value!r})")
        return cls(images=images, **flags)

    def wants(self, image: str) -> bool:
        return not self.images or image in self.images
