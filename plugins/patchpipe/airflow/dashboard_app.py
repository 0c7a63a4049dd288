"""The dashboard's FastAPI app, which ``patchpipe_plugin`` mounts on Airflow's api-server.

Thin on purpose: every route checks the caller (``dashboard_auth``), reads one ``LedgerSnapshot``
and hands it to ``patchpipe.dashboard``. Routes are plain ``def``, so FastAPI runs their blocking
database reads in its thread pool. Paths, under the mount point (``/patchpipe``):

    /                    the fleet page           /api/fleet             the same as JSON
    /images/<image>      an image's page          /api/images/<image>    the same as JSON
    /metrics             Prometheus text format   /icon.svg              the navigation icon (public)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import lru_cache

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, JSONResponse, Response
from markupsafe import escape
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from patchpipe import db
from patchpipe.airflow.dashboard_auth import NotAuthenticated, fleet_reader, metrics_reader
from patchpipe.dashboard import api, render
from patchpipe.dashboard.findings_source import current_findings
from patchpipe.dashboard.fleet import fleet_rows
from patchpipe.dashboard.image_page import image_detail
from patchpipe.dashboard.metrics import FindingsSource, metrics_text
from patchpipe.dashboard.snapshot import read_snapshot
from patchpipe.errors import PatchpipeError

ICON = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" fill="none" stroke="currentColor" '
        'stroke-width="2"><path d="M12 2 4 5v6c0 5 3.4 9.3 8 11 4.6-1.7 8-6 8-11V5z"/><path d="m9 12 2 2 4-4"/></svg>')


@lru_cache(maxsize=4)
def _engine(url: str) -> Engine:
    engine = db.make_engine(url)
    db.create_schema(engine)  # an empty ledger is an empty fleet, not an error
    return engine


def ledger_engine() -> Engine:
    """The ledger the DAGs write: connection ``patchpipe_db``, else ``$PATCHPIPE_DB`` (see PatchpipeHook)."""
    from patchpipe.airflow.hooks import PatchpipeHook

    return _engine(PatchpipeHook().database_url())


def create_app(engine: Callable[[], Engine] = ledger_engine, findings: FindingsSource = current_findings,
               clock: Callable[[], datetime] = db.utc_now) -> FastAPI:
    """The app; ``engine``, ``findings`` and ``clock`` are parameters so a test can serve any ledger."""
    app = FastAPI(title="patchpipe dashboard", description="The fleet's patch state, from the patch ledger.",
                  docs_url=None, redoc_url=None, openapi_url=None)

    def base(request: Request) -> str:
        return request.scope.get("root_path", "").rstrip("/")

    def views(image: str | None = None):
        engine_now = engine()
        snapshot = read_snapshot(engine_now)
        found = findings(engine_now, snapshot)
        if image is None:
            return fleet_rows(snapshot, found)
        detail = image_detail(snapshot, found, image, engine_now)
        if detail is None:
            raise HTTPException(404, f"the patch ledger has no result for image {image!r}")
        return detail

    @app.exception_handler(HTTPException)
    async def page_or_json(request: Request, exc: HTTPException):
        """A browser gets a page (a sign-in link for 401), every other client JSON; never ledger data."""
        wants_html = "text/html" in request.headers.get("accept", "") and not request.url.path.startswith(
            (f"{base(request)}/api/", f"{base(request)}/metrics"))
        if not wants_html:
            return await http_exception_handler(request, exc)
        if isinstance(exc, NotAuthenticated):
            from airflow.api_fastapi.app import get_auth_manager

            login = get_auth_manager().get_url_login(next_url=str(request.url))
            body = render.render_unauthorized(login_url=login, reason=str(exc.detail))
        elif exc.status_code == 404 and "image" in request.path_params:
            body = render.render_not_found(image=request.path_params["image"], base=base(request))
        else:
            body = f"<!doctype html><title>{exc.status_code}</title><p>{escape(str(exc.detail))}</p>"
        return HTMLResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(PatchpipeError)
    @app.exception_handler(OperationalError)
    async def ledger_unavailable(request: Request, exc: Exception):
        """503 naming the database (password hidden), so a scrape or a page says where it failed."""
        if isinstance(exc, OperationalError):
            where = engine().url.render_as_string(hide_password=True)
            exc = PatchpipeError(f"cannot read the patch ledger at {where}: {exc.orig}")
        return await page_or_json(request, HTTPException(503, str(exc)))

    @app.get("/", response_class=HTMLResponse, dependencies=[Depends(fleet_reader)])
    def fleet_page(request: Request) -> HTMLResponse:
        return HTMLResponse(render.render_fleet(views(), base=base(request), now=clock()))

    @app.get("/images/{image:path}", response_class=HTMLResponse, dependencies=[Depends(fleet_reader)])
    def image_page(request: Request, image: str) -> HTMLResponse:
        return HTMLResponse(render.render_image(views(image), base=base(request), now=clock()))

    @app.get("/api/fleet", dependencies=[Depends(fleet_reader)])
    def fleet_api() -> JSONResponse:
        return JSONResponse(api.fleet_json(views(), clock()))

    @app.get("/api/images/{image:path}", dependencies=[Depends(fleet_reader)])
    def image_api(image: str) -> JSONResponse:
        return JSONResponse(api.image_json(views(image), clock()))

    @app.get("/metrics", dependencies=[Depends(metrics_reader)])
    def metrics() -> Response:
        # The 0.0.4 text format every Prometheus 2.x reads (prometheus-client's "latest" is 1.0.0,
        # for UTF-8 names, which these metrics do not use: the bytes are the same).
        return Response(metrics_text(engine(), findings, clock), media_type=CONTENT_TYPE_PLAIN_0_0_4)

    @app.get("/icon.svg", include_in_schema=False)
    def icon() -> Response:
        return Response(ICON, media_type="image/svg+xml")

    return app

