"""The state of a `prowl serve` process shared by its route modules: the open gallery, the
loaded embedder, locks and worker slots, background jobs; and the id types of its URLs."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi import Path as PathParam

from cli.web_jobs import ExportJobs, IngestJobs
from pipeline.core.config import Config, QueryConfig, ServeConfig
from storage.gallery import Gallery, Hit
from storage.models import VideoRow

# Ids are bounded by their column's type, so no id reaches the database out of its range
# (PostgreSQL answers "integer out of range" past int4): detections are BIGINT, the rest
# (videos, subjects, frame numbers, jobs) INTEGER.
INT4_MAX = 2**31 - 1
MAX_ID = 2**62
DetectionId = Annotated[int, PathParam(ge=1, le=MAX_ID)]
RowId = Annotated[int, PathParam(ge=1, le=INT4_MAX)]
FrameNumber = Annotated[int, PathParam(ge=0, le=INT4_MAX)]
WAIT_FOR_WORKER_S = 120.0


@dataclass
class ServerState:
    gallery: Gallery
    settings: ServeConfig
    cfg: Config | None = None  # ingest from the page (None: off)
    roots: list[Path] = field(default_factory=list)
    embedder: Any = None  # (embedder id, embedder), loaded on first search
    lock: threading.Lock = field(default_factory=threading.Lock)  # the index and the embedder
    jobs: IngestJobs | None = None
    exports: ExportJobs | None = None
    seen_version: int | None = None
    query: QueryConfig | None = None  # re-ranking and expansion of searches (None: off)
    _work: threading.BoundedSemaphore | None = None
    _clips: threading.BoundedSemaphore | None = None

    def __post_init__(self) -> None:
        self._work = threading.BoundedSemaphore(self.settings.workers)
        self._clips = threading.BoundedSemaphore(self.settings.clip_jobs)
        self.seen_version = self.gallery.version()

    @property
    def uploads(self) -> Path:
        return self.gallery.data_dir / "uploads"

    @property
    def clips_cache_bytes(self) -> int:
        return int(self.settings.clips_cache_mb * (1 << 20))

    @contextmanager
    def worker(self, clip: bool = False) -> Iterator[None]:
        """A slot for heavy work (model, decode, zip); a clip also needs one of the clip slots.
        503 when none frees up in time."""
        sems = [self._work] + ([self._clips] if clip else [])
        taken: list[threading.BoundedSemaphore] = []
        try:
            for sem in sems:
                assert sem is not None
                if not sem.acquire(timeout=WAIT_FOR_WORKER_S):
                    raise HTTPException(503, "the server is busy; try again in a moment")
                taken.append(sem)
            yield
        finally:
            for sem in reversed(taken):
                sem.release()

    def catch_up(self) -> None:
        """Bring the loaded indexes up to the rows (another process, or an ingest job, may
        have added some); searches wait and never see half of it."""
        with self.lock:
            self._catch_up_locked()

    def _catch_up_locked(self) -> None:
        version = self.gallery.version()
        self.gallery.refresh_indexes()
        self.seen_version = version

    def fresh(self) -> None:
        """With ``lock`` held: catch up when the gallery changed since we last looked."""
        if self.gallery.version() != self.seen_version:
            self._catch_up_locked()


def server(request: Request) -> ServerState:
    state: ServerState = request.app.state.prowl
    return state


State = Annotated[ServerState, Depends(server)]


def video_row(state: ServerState, video_id: int) -> VideoRow:
    v = state.gallery.video(video_id)
    if v is None:
        raise HTTPException(404, f"no video {video_id}")
    return v


def ids_of(text: str | None, what: str) -> list[int]:
    """ "1,2, 3" -> [1, 2, 3] (the page sends marked hits this way)."""
    out = []
    for part in (text or "").replace(" ", "").split(","):
        if part:
            if not part.isdigit() or len(part) > 18 or not 1 <= int(part) <= MAX_ID:
                raise HTTPException(422, f"{what}: detection ids separated by commas")
            out.append(int(part))
    if len(out) > 1000:
        raise HTTPException(422, f"{what}: at most 1000 ids")
    return out


def hit_json(h: Hit) -> dict[str, Any]:
    from pipeline.core.timeline import wall_time

    return {
        "rank": h.rank,
        "similarity": round(h.similarity, 4),
        "detection_id": h.detection_id,
        "video_id": h.video_id,
        "video": h.video_path.rsplit("/", 1)[-1],
        "camera": h.camera_id,
        "frame": h.frame_index,
        "time_s": round(h.timestamp_s, 3),
        "wall_time": wall_time(h.video_start, h.timestamp_s),
        "box": [round(v, 1) for v in h.xyxy],
        "track_id": h.track_id,
        "upper": h.upper_colours.split(",") if h.upper_colours else [],
        "lower": h.lower_colours.split(",") if h.lower_colours else [],
        "thumbnail": f"/api/detections/{h.detection_id}/thumbnail",
        "frame_image": f"/api/detections/{h.detection_id}/frame",
        "clip": f"/api/detections/{h.detection_id}/clip",
    }


def answer_json(result: Any, seconds: float) -> dict[str, Any]:
    """A search's answer for the page and the API: hits (by appearance: each appearance's best
    sighting, with its enter/leave and sightings), the journey in time order, the query crops
    shown as data URIs, notes."""
    import base64

    from pipeline.core.crops import encode_jpeg
    from pipeline.core.timeline import wall_time
    from pipeline.journey import journey

    hits = [hit_json(h) for h in result.hits]
    by_best = {t.best_detection_id: t for t in result.tracks}
    for card in hits:
        t = by_best.get(card["detection_id"])
        if t is None:
            continue
        card["appearance"] = {
            "track_id": t.track_id,
            "enter_s": round(t.first_s, 3),
            "leave_s": round(t.last_s, 3),
            "enter_wall": wall_time(t.video_start, t.first_s),
            "leave_wall": wall_time(t.video_start, t.last_s),
            "sightings": t.sightings,
        }
    crops = [
        "data:image/jpeg;base64," + base64.b64encode(encode_jpeg(c, 160)).decode()
        for c in result.crops
    ]
    return {
        "embedder": result.embedder,
        "seconds": seconds,
        "by": "track" if result.tracks else "detection",
        "hits": hits,
        "journey": [s.record() for s in journey(result)],
        "query_crops": crops,
        "notes": result.notes,
    }
