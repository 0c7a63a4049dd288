"""Errors a user can cause. Their message says what went wrong and where.

The CLI prints them and exits 2; an Airflow task fails with them. Anything else is a bug.
"""


class PatchpipeError(Exception):
    """A problem with the user's input or environment, explained in the message."""


class ManifestError(PatchpipeError):
    """The fleet manifest is invalid; ``problems`` lists each one as ``path: message``."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: {len(problems)} problem(s)\n" + "\n".join(f"  {p}" for p in problems))


class ImageReferenceError(PatchpipeError):
    """An image reference that cannot be parsed."""


class RegistryError(PatchpipeError):
    """The registry refused a request or answered something that is not a valid OCI response."""


class LayerError(PatchpipeError):
    """An image layer is malformed or holds an unsafe tar entry."""
