"""OpenVEX documents (https://github.com/openvex/spec, v0.2.0): ``parse_vex(text, source)`` and
``load_vex(paths)`` turn them into ``VexStatement``s; ``vex_match`` decides which apply to a finding.

A document is checked for what the policy gate relies on, and a mistake is reported with the file
and the field (``web.vex.json: statements[2].justification: ...``) instead of being skipped:

- the document's ``@context`` (an ``https://openvex.dev/ns`` URL: a CycloneDX or CSAF file given by
  mistake is named as such rather than read as having no statements), ``@id``, ``author``,
  ``timestamp`` and ``version``, all required by the specification;
- each statement's ``vulnerability.name``, its ``products`` (a standalone document has nothing to
  inherit them from), a ``status`` among the four labels, and for ``not_affected`` a ``justification``
  among the five labels or an ``impact_statement``: the specification requires one, and it is the
  explanation the gate quotes;
- every package URL (a product's or subcomponent's ``@id`` starting with ``pkg:``, or its
  ``identifiers.purl``) parses.

Timestamps are RFC 3339 with an offset (Go's nanoseconds are cut to microseconds); a statement
without one carries the document's. Fields the gate does not use (``action_statement``, hashes,
CPEs) are not checked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, get_args

from packageurl import PackageURL

from patchpipe.errors import PatchpipeError

__all__ = ["JUSTIFICATIONS", "VexComponent", "VexProduct", "VexStatement", "VexStatus", "load_vex", "parse_vex"]

VexStatus = Literal["not_affected", "affected", "fixed", "under_investigation"]
JUSTIFICATIONS = (
    "component_not_present",
    "vulnerable_code_not_present",
    "vulnerable_code_not_in_execute_path",
    "vulnerable_code_cannot_be_controlled_by_adversary",
    "inline_mitigations_already_exist",
)
CONTEXT_PREFIX = "https://openvex.dev/ns"
_RFC3339 = re.compile(r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$")


@dataclass(frozen=True)
class VexComponent:
    """A product or subcomponent, by what identifies it: its ``@id`` (a purl, an image reference or any
    other IRI) and its package URLs (the ``@id`` when it is one, and ``identifiers.purl``)."""

    id: str | None
    purls: tuple[PackageURL, ...]


@dataclass(frozen=True)
class VexProduct(VexComponent):
    subcomponents: tuple[VexComponent, ...] = ()


@dataclass(frozen=True)
class VexStatement:
    source: str  # the file, named in errors and in the gate's reasons
    index: int  # the statement's position in the document's ``statements``
    document_id: str
    author: str
    vulnerability: str
    aliases: tuple[str, ...]
    products: tuple[VexProduct, ...]
    status: VexStatus
    timestamp: datetime
    justification: str | None = None
    impact_statement: str | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return (self.vulnerability, *self.aliases)

    @property
    def where(self) -> str:
        return f"{self.source} statements[{self.index}]"


def load_vex(paths: Iterable[str | Path]) -> list[VexStatement]:
    """Every statement of the documents at ``paths``, in the order given."""
    statements: list[VexStatement] = []
    for path in map(Path, paths):
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise PatchpipeError(f"OpenVEX document not found: {path}") from None
        except UnicodeDecodeError as error:
            raise PatchpipeError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
        except OSError as error:
            raise PatchpipeError(f"cannot read OpenVEX document {path}: {error.strerror}") from None
        statements += parse_vex(text, str(path))
    return statements


def parse_vex(text: str, source: str = "<string>") -> list[VexStatement]:
    """The statements of the OpenVEX document ``text``; ``source`` names it in errors."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise PatchpipeError(f"{source}: not valid JSON: {error.msg} at line {error.lineno}, "
                             f"column {error.colno}") from None
    return _Reader(source).document(document)


class _Reader:
    """Reads one document; every error names the source file and the field's path in it."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, where: str, message: str) -> PatchpipeError:
        return PatchpipeError(f"{self.source}: {where}: {message}" if where else f"{self.source}: {message}")

    def document(self, data: Any) -> list[VexStatement]:
        if not isinstance(data, dict):
            raise self.fail("", "an OpenVEX document is a JSON object")
        context = data.get("@context")
        if not isinstance(context, str) or not context.startswith(CONTEXT_PREFIX):
            raise self.fail("@context", f"must be an OpenVEX context ({CONTEXT_PREFIX}/...), got {context!r}: "
                            "not an OpenVEX document")
        document_id = self.text(data, "@id", "")
        author = self.text(data, "author", "")
        timestamp = self.timestamp(data, "timestamp", "")
        if not isinstance(data.get("version"), int) or isinstance(data["version"], bool):
            raise self.fail("version", f"must be an integer, got {data.get('version')!r}")
        statements = data.get("statements")
        if not isinstance(statements, list):
            raise self.fail("statements", "must be a list")
        return [self.statement(entry, index, document_id, author, timestamp)
                for index, entry in enumerate(statements)]

    def statement(self, data: Any, index: int, document_id: str, author: str, issued: datetime) -> VexStatement:
        where = f"statements[{index}]"
        if not isinstance(data, dict):
            raise self.fail(where, "must be an object")
        vulnerability = data.get("vulnerability")
        if not isinstance(vulnerability, dict):
            raise self.fail(f"{where}.vulnerability", "must be an object with a name, e.g. {\"name\": \"CVE-2023-12345\"}")
        name = self.text(vulnerability, "name", f"{where}.vulnerability")
        aliases = vulnerability.get("aliases", [])
        if not isinstance(aliases, list) or not all(isinstance(a, str) and a.strip() for a in aliases):
            raise self.fail(f"{where}.vulnerability.aliases", "must be a list of ids")
        products = data.get("products")
        if not isinstance(products, list) or not products:
            raise self.fail(f"{where}.products", "must list at least one product (a standalone document has "
                            "nowhere to inherit them from)")
        status = data.get("status")
        if status not in get_args(VexStatus):
            raise self.fail(f"{where}.status", f"must be one of {', '.join(get_args(VexStatus))}, got {status!r}")
        justification = data.get("justification")
        if justification is not None and justification not in JUSTIFICATIONS:
            raise self.fail(f"{where}.justification", f"must be one of {', '.join(JUSTIFICATIONS)}, "
                            f"got {justification!r}")
        impact = data.get("impact_statement")
        if impact is not None and not (isinstance(impact, str) and impact.strip()):
            raise self.fail(f"{where}.impact_statement", "must be text")
        if status == "not_affected" and justification is None and impact is None:
            raise self.fail(where, "a not_affected statement needs a justification or an impact_statement")
        return VexStatement(
            source=self.source, index=index, document_id=document_id, author=author, vulnerability=name,
            aliases=tuple(a.strip() for a in aliases),
            products=tuple(self.product(p, f"{where}.products[{n}]") for n, p in enumerate(products)),
            status=status,
            timestamp=self.timestamp(data, "timestamp", where) if data.get("timestamp") is not None else issued,
            justification=justification, impact_statement=impact.strip() if impact else None,
        )

    def product(self, data: Any, where: str) -> VexProduct:
        component = self.component(data, where)
        subcomponents = data.get("subcomponents", [])
        if not isinstance(subcomponents, list):
            raise self.fail(f"{where}.subcomponents", "must be a list")
        return VexProduct(component.id, component.purls,
                          tuple(self.component(s, f"{where}.subcomponents[{n}]") for n, s in enumerate(subcomponents)))

    def component(self, data: Any, where: str) -> VexComponent:
        if not isinstance(data, dict):
            raise self.fail(where, "must be an object, e.g. {\"@id\": \"pkg:deb/debian/openssl\"}")
        identifier = data.get("@id")
        if identifier is not None and not (isinstance(identifier, str) and identifier.strip()):
            raise self.fail(f"{where}.@id", "must be text")
        identifiers = data.get("identifiers", {})
        if not isinstance(identifiers, dict):
            raise self.fail(f"{where}.identifiers", "must be an object")
        if identifier is None and not identifiers and not data.get("hashes"):
            raise self.fail(where, "needs an @id, identifiers or hashes to say which software it is")
        identifier = identifier.strip() if identifier is not None else None
        purls = []
        if identifier is not None and identifier.startswith("pkg:"):
            purls.append(self.purl(f"{where}.@id", identifier))
        if "purl" in identifiers:
            purls.append(self.purl(f"{where}.identifiers.purl", identifiers["purl"]))
        return VexComponent(identifier, tuple(purls))

    def purl(self, where: str, text: Any) -> PackageURL:
        try:
            return PackageURL.from_string(text)
        except (ValueError, TypeError) as error:
            raise self.fail(where, f"not a valid package URL ({error}): {text!r}") from None

    def text(self, data: dict[str, Any], key: str, where: str) -> str:
        value = data.get(key)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"{where}.{key}" if where else key, "field required" if value is None else "must be text")
        return value.strip()

    def timestamp(self, data: dict[str, Any], key: str, where: str) -> datetime:
        value = self.text(data, key, where)
        match = _RFC3339.match(value)
        if match is not None:
            day, time, fraction, offset = match.groups()
            offset = "+00:00" if offset in "Zz" else offset
            try:
                return datetime.fromisoformat(f"{day}T{time}.{(fraction or '0')[:6].ljust(6, '0')}{offset}")
            except ValueError:
                pass
        raise self.fail(f"{where}.{key}" if where else key,
                        f"must be an RFC 3339 time with an offset, e.g. 2023-01-08T18:02:03Z, got {value!r}")
