"""When each vulnerability was first made public, from the advisory store: the start of its time-to-patch.

The earliest ``published`` date among the advisories linked to an id counts, the way
``store.advisory`` links them (by id and alias, one hop each way): a CVE published in March and the
DSA that fixed it in May give March, because that is when the world knew. Read in bulk (two queries
per 500 ids) because a scan can have hundreds of findings and ``store.advisory`` is one lookup each.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from patchpipe.advisories.tables import AdvisoryRow, AliasRow

_IDS_PER_QUERY = 500  # well under SQLite's limit on bound parameters


def published_dates(engine: Engine, findings_or_ids: Iterable) -> dict[str, datetime]:
    """``{id: earliest published}`` for every given id (or every id and alias of the given findings)
    that the store knows a date for; ids without one are left out."""
    wanted = sorted(_ids(findings_or_ids))
    dates: dict[str, datetime] = {}
    with Session(engine) as session:
        for start in range(0, len(wanted), _IDS_PER_QUERY):
            chunk = wanted[start:start + _IDS_PER_QUERY]
            in_chunk = set(chunk)
            linked: dict[str, set[str]] = {vid: {vid} for vid in chunk}  # advisory id -> the wanted ids it serves
            for advisory_id, alias in session.execute(
                select(AliasRow.advisory_id, AliasRow.alias).where(AliasRow.alias.in_(chunk))
            ):
                linked.setdefault(advisory_id, set()).add(alias)
            for advisory_id, alias in session.execute(
                select(AliasRow.advisory_id, AliasRow.alias).where(AliasRow.advisory_id.in_(chunk))
            ):
                linked.setdefault(alias, set()).add(advisory_id)
            names = sorted(linked)
            for part in range(0, len(names), _IDS_PER_QUERY):
                for advisory_id, published in session.execute(
                    select(AdvisoryRow.id, AdvisoryRow.published).where(
                        AdvisoryRow.id.in_(names[part:part + _IDS_PER_QUERY]), AdvisoryRow.published.is_not(None)
                    )
                ):
                    for vid in linked[advisory_id]:
                        if vid in in_chunk and (vid not in dates or published < dates[vid]):
                            dates[vid] = published
    return dates


def _ids(findings_or_ids: Iterable) -> set[str]:
    ids: set[str] = set()
    for item in findings_or_ids:
        if isinstance(item, str):
            ids.add(item)
        else:  # a scan.findings.Finding
            ids.update(item.ids)
    return ids
