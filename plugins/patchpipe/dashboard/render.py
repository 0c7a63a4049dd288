"""The dashboard's HTML: Jinja2 templates, autoescaped, no JavaScript and no build step.

Every value on a page comes from the ledger, and some of it from outside (image names from the
manifest, error messages, advisory ids), so autoescaping is on for every template. Links are built
from ``base``, the path the app is mounted on, so the pages work inside the Airflow UI's iframe and
on their own.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from patchpipe.dashboard.findings import SEVERITIES
from patchpipe.dashboard.fleet import FleetRow
from patchpipe.dashboard.image_page import ImageDetail

TEMPLATES = Path(__file__).resolve().parent / "templates"


def short_digest(digest: str | None) -> str:
    """``sha256:0123456789ab`` (12 hex digits, as ``docker images`` shows), or ``-``."""
    if not digest:
        return "-"
    algorithm, _, value = digest.partition(":")
    return f"{algorithm}:{value[:12]}" if value else digest[:19]


def when(value: datetime | None) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if value else "-"


def age(seconds: float) -> str:
    """``3d 4h``, ``5h 2m``, ``12m``: the age of a waiting fix, coarse on purpose."""
    minutes = int(seconds // 60)
    days, hours, mins = minutes // 1440, minutes // 60 % 24, minutes % 60
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {mins}m" if hours else f"{mins}m"


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(short_digest=short_digest, when=when, age=age)
    env.globals.update(severities=SEVERITIES)
    return env


_ENV = _environment()


def image_link(base: str, image: str) -> str:
    return f"{base}/images/{quote(image, safe='')}"


def render_fleet(rows: list[FleetRow], *, base: str, now: datetime) -> str:
    return _ENV.get_template("fleet.html").render(rows=rows, base=base, now=now, image_link=image_link)


def render_image(detail: ImageDetail, *, base: str, now: datetime) -> str:
    return _ENV.get_template("image.html").render(detail=detail, row=detail.row, base=base, now=now)


def render_unauthorized(*, login_url: str, reason: str) -> str:
    return _ENV.get_template("unauthorized.html").render(login_url=login_url, reason=reason, base="")


def render_not_found(*, image: str, base: str) -> str:
    return _ENV.get_template("not_found.html").render(image=image, base=base)
