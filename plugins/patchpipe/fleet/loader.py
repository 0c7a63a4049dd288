"""Reading a manifest, or a policy file shaped like its ``policy:`` block: YAML without duplicate keys,
validated by the models, every problem reported."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from patchpipe.errors import ManifestError, PatchpipeError
from patchpipe.fleet.models import Fleet, Policy
from patchpipe.fleet.problems import kind_of, problem_line

ModelT = TypeVar("ModelT", bound=BaseModel)


class _NoDuplicateKeys:
    """A loader mix-in that rejects duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_lines: dict[tuple[str, str], int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = (key_node.tag, key_node.value)
            if key in first_lines:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key_node.value!r} (first at line {first_lines[key]})",
                    key_node.start_mark,
                )
            first_lines[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


class _ManifestLoader(_NoDuplicateKeys, yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys and leaves dates as text for the models to check."""


class _FastManifestLoader(_NoDuplicateKeys, getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """The same on libyaml's C parser when PyYAML has it: ten times faster, which a 1,000-image
    manifest, read by every task, needs. Its syntax errors are terser, so a document it rejects is
    read again by _ManifestLoader for the message."""


# YAML 1.1 turns 2027-06-30 into a date and 2027-13-45 into a crash; as text, IsoDate reports both.
_ManifestLoader.yaml_implicit_resolvers = _FastManifestLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_fleet(path: str | Path) -> Fleet:
    """Read and validate the manifest at ``path``; build contexts resolve against its directory."""
    path = Path(path)
    return parse_fleet(_read_text(path, "fleet manifest"), source=str(path), manifest_dir=path.parent)


def parse_fleet(text: str, source: str = "<string>", manifest_dir: Path | None = None) -> Fleet:
    """Validate manifest ``text``; ``source`` names it in errors.

    ``manifest_dir`` is where relative build contexts resolve (default: the working directory).
    Raises ManifestError listing every problem.
    """
    fleet = _validate(Fleet, _read_mapping(text, source, "the manifest"), source)
    fleet._manifest_dir = (manifest_dir or Path.cwd()).resolve()
    return fleet


def load_policy(path: str | Path) -> Policy:
    """Read a policy file: YAML (or JSON) shaped like a manifest's ``policy:`` block.

    Its ``vex`` paths are relative to the file's directory (``Policy.vex_paths(path.parent)``).
    Raises ManifestError listing every problem, each as ``field: message``.
    """
    path = Path(path)
    return _validate(Policy, _read_mapping(_read_text(path, "policy file"), str(path), "the policy file"), str(path))


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PatchpipeError(f"{what} not found: {path}") from None
    except UnicodeDecodeError as error:
        raise ManifestError(str(path), [f"not UTF-8 text: {error.reason} at byte {error.start}"]) from None
    except OSError as error:
        raise PatchpipeError(f"cannot read {what} {path}: {error.strerror}") from None


def _read_mapping(text: str, source: str, what: str) -> dict[Any, Any]:
    try:
        data = yaml.load(text, Loader=_FastManifestLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError:
        try:
            data = yaml.load(text, Loader=_ManifestLoader)  # noqa: S506 - a SafeLoader subclass
        except yaml.YAMLError as error:
            raise ManifestError(source, [_yaml_problem(error)]) from None
    if data is None:
        raise ManifestError(source, [f"{what} is empty"])
    if not isinstance(data, dict):
        raise ManifestError(source, [f"{what} must be a mapping of keys, not {kind_of(data)}"])
    return data


def _validate(model: type[ModelT], data: dict[Any, Any], source: str) -> ModelT:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise ManifestError(source, [problem_line(detail) for detail in error.errors()]) from None


def _yaml_problem(error: yaml.YAMLError) -> str:
    if not isinstance(error, yaml.MarkedYAMLError) or error.problem_mark is None:
        return f"not valid YAML: {error}"
    mark = error.problem_mark
    problem = f"line {mark.line + 1}, column {mark.column + 1}: {error.problem}"
    if error.context and error.context_mark is not None:
        context_mark = error.context_mark
        problem += f" ({error.context} at line {context_mark.line + 1}, column {context_mark.column + 1})"
    return problem

