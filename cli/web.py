"""`prowl serve`'s application: one process that opens the gallery and loads its embedder
once, and answers the pages and their JSON API through the same ``run_query`` the CLI calls.

Security: the server holds surveillance data. Every request passes ``cli.web_guard.Guard``
first (Host names, other sites, token, body sizes, security headers). URLs carry ids, never
file paths. Uploads are size-limited while they stream, images are refused by their header's
pixel count before they are decoded. Model, decode, clip and zip work runs in worker threads
with bounded concurrency, never on the event loop, so ``/healthz`` and light requests are
answered while a search or an export is busy. Errors are JSON with one message, never a
traceback. The pages build gallery text with ``textContent`` only.

Routes live in modules by topic: web_gallery (pages, videos, runs, subjects), web_media
(thumbnails, frames, clips), web_search (search, evidence export jobs), web_ingest.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cli.web_gallery import router as gallery_routes
from cli.web_guard import LOOPBACK_NAMES, Guard
from cli.web_ingest import router as ingest_routes
from cli.web_jobs import ExportJobs, IngestJobs
from cli.web_media import router as media_routes
from cli.web_search import router as search_routes
from cli.web_state import ServerState
from pipeline.core.config import Config, ServeConfig, load_config
from storage.gallery import Gallery

log = logging.getLogger(__name__)


def create_app(
    gallery: Gallery,
    token: str | None = None,
    cfg: Config | None = None,
    ingest_roots: list[Path] | None = None,
    allowed_hosts: set[str] | None = set(LOOPBACK_NAMES),  # noqa: B006 - never mutated
    settings: ServeConfig | None = None,
) -> FastAPI:
    """The ASGI app over an open gallery. ``token``: required on every request when set.
    ``cfg`` and ``ingest_roots``: ingest from the page, of files under those folders (and of
    uploads, saved under the gallery's data folder). ``allowed_hosts``: the Host names served
    (None: any, for a wildcard bind with a token)."""
    serve = settings or (cfg.serve if cfg is not None else ServeConfig())
    state = ServerState(gallery, serve, cfg, [Path(r) for r in ingest_roots or []])
    state.query = (cfg if cfg is not None else load_config()).query
    exports_dir = Path(tempfile.mkdtemp(prefix="prowl-exports-"))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if cfg is not None:
            state.jobs = IngestJobs(cfg, state.catch_up)
        state.exports = ExportJobs(exports_dir)
        yield
        if state.jobs is not None:
            state.jobs.close()
        state.exports.close()
        shutil.rmtree(exports_dir, ignore_errors=True)

    app = FastAPI(title="prowl", version="1", docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.prowl = state
    image_bytes = int(serve.max_image_mb * (1 << 20))
    app.add_middleware(
        Guard,
        token=token,
        allowed_hosts=allowed_hosts,
        max_body_bytes=image_bytes + (1 << 20),  # an image and the form around it
        upload_limits={"/api/ingest/upload": int(serve.max_video_upload_mb * (1 << 20))},
    )

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def bad_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return error(422, f"{where}: {first.get('msg', 'invalid request')}".strip(": "))

    @app.exception_handler(Exception)
    async def crash(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("request failed")
        return error(500, f"internal error ({type(exc).__name__}); see the server log")

    @app.get("/healthz")
    async def health() -> dict[str, str]:  # on the event loop: answered whatever else runs
        return {"status": "ok"}

    for routes in (gallery_routes, media_routes, search_routes, ingest_routes):
        app.include_router(routes)
    return app
