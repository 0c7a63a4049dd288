"""Image references: ``registry[:port]/repository[:tag][@sha256:digest]``.

Follows the distribution reference grammar; the registry part is required, because patchpipe talks
to registries directly and never guesses Docker Hub.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from patchpipe.errors import ImageReferenceError

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_REGISTRY = re.compile(r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9-]+)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")


@dataclass(frozen=True)
class ImageReference:
    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """``registry/repository`` without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def reference(self) -> str:
        """What to ask the registry for: the digest when pinned, else the tag."""
        return self.digest or self.tag or "latest"

    def with_digest(self, digest: str) -> "ImageReference":
        return ImageReference(self.registry, self.repository, None, digest)

    def with_tag(self, tag: str) -> "ImageReference":
        return ImageReference(self.registry, self.repository, tag, None)

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_reference(text: str) -> ImageReference:
    """Parse ``text`` or raise ImageReferenceError saying which part is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise ImageReferenceError("image reference is empty")
    original = text
    text = text.strip()
    digest = None
    if "@" in text:
        text, digest = text.split("@", 1)
        if not _DIGEST.match(digest):
            raise ImageReferenceError(f"image reference {original!r}: digest {digest!r} is not sha256:<64 hex>")
    if "/" not in text:
        raise ImageReferenceError(
            f"image reference {original!r} has no registry; write it in full, e.g. 127.0.0.1:5000/{text}"
        )
    registry, rest = text.split("/", 1)
    if not ("." in registry or ":" in registry or registry == "localhost" or registry.startswith("[")):
        raise ImageReferenceError(
            f"image reference {original!r}: {registry!r} is not a registry host; write it in full, "
            f"e.g. 127.0.0.1:5000/{text}"
        )
    if not _REGISTRY.match(registry):
        raise ImageReferenceError(f"image reference {original!r}: registry {registry!r} is not a valid host[:port]")
    tag = None
    if ":" in rest:
        rest, tag = rest.rsplit(":", 1)
        if not _TAG.match(tag):
            raise ImageReferenceError(f"image reference {original!r}: tag {tag!r} is not a valid tag")
    if not _REPOSITORY.match(rest):
        raise ImageReferenceError(
            f"image reference {original!r}: repository {rest!r} must be lowercase path components "
            "of letters, digits and separators"
        )
    return ImageReference(registry, rest, tag, digest)
