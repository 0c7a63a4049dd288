"""Generate a large OSV bulk archive (``all.zip``) from the real OSV samples, for the ingest benchmark.

Each generated record is one of the real records in ``shared/data/advisories/osv-*`` (Debian DSA,
DLA and DTSA advisories, the Alpine one with nine releases), rewritten so that no two are alike:
a new id in the sample's own style, a new CVE in ``aliases``/``upstream``, one of a few thousand
package names, fixed versions with a varying suffix, and shifted dates. Everything else (field
layout, ``versions`` lists, references, details) stays as the real feed has it, so the parser does
the work it does on the real archive.

    python tests/bench/osv_corpus.py /tmp/corpus/all.zip --records 200000
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
import zipfile
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "data" / "advisories"
PACKAGE_VARIANTS = 3_000
_ID_STYLE = re.compile(r"^(?P<prefix>[A-Z]+(?:-CVE)?)-")


@dataclass(frozen=True)
class Corpus:
    path: Path
    records: int
    affected: int
    size: int  # bytes of the zip archive


def load_samples(samples: Path = SAMPLES) -> list[dict]:
    files = sorted(samples.glob("osv-*/*.json"))
    if not files:
        raise SystemExit(f"no OSV samples under {samples}/osv-*/")
    return [json.loads(file.read_text()) for file in files]


def generated_record(sample: dict, number: int) -> dict:
    """``sample`` rewritten as the ``number``-th record of the corpus."""
    record = copy.deepcopy(sample)
    year = 2000 + number % 26
    cve = f"CVE-{year}-{100000 + number}"
    prefix = _ID_STYLE.match(sample["id"]).group("prefix")  # DSA, DLA, DTSA, ALPINE-CVE
    record["id"] = f"{cve.replace('CVE', prefix, 1)}" if prefix.endswith("CVE") else f"{prefix}-{number}-1"
    if "aliases" in record:
        record["aliases"] = [cve]
    if "upstream" in record:
        record["upstream"] = [cve, f"DEBIAN-{cve}"] if prefix != "ALPINE-CVE" else [cve]
    shift = timedelta(minutes=number)
    for field in ("published", "modified"):
        if field in record:
            record[field] = (datetime(2015, 1, 1, tzinfo=timezone.utc) + shift).strftime("%Y-%m-%dT%H:%M:%SZ")
    suffix = f"+bench{number % 97}"
    for affected in record.get("affected", []):
        affected["package"]["name"] = f"{affected['package']['name']}{number % PACKAGE_VARIANTS}"
        for range_ in affected.get("ranges", []):
            for event in range_.get("events", []):
                if "fixed" in event:
                    event["fixed"] += suffix
    return record


def write_corpus(path: Path, records: int, samples: Path = SAMPLES) -> Corpus:
    """Write ``records`` generated records to the zip archive ``path``, one member each, as OSV does."""
    bases = load_samples(samples)
    path.parent.mkdir(parents=True, exist_ok=True)
    affected = 0
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for number in range(records):
            record = generated_record(bases[number % len(bases)], number)
            affected += len(record.get("affected", []))
            archive.writestr(f"{record['id']}.json", json.dumps(record))
    return Corpus(path, records, affected, path.stat().st_size)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", type=Path, help="the zip archive to write")
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--samples", type=Path, default=SAMPLES, help=f"default: {SAMPLES}")
    args = parser.parse_args(argv)
    corpus = write_corpus(args.path, args.records, args.samples)
    print(f"{corpus.path}: {corpus.records} records, {corpus.affected} affected entries, {corpus.size / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
