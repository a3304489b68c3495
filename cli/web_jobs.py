"""Background ingest for `prowl serve`: a file under a configured root (or an upload) is
ingested by one worker thread, one job at a time, through the CLI's own ``ingest_video``,
with progress readable while it runs.

The job writes through its own gallery connection; when it finishes, the server's indexes
are caught up from the rows (``sync_index``) under the server's query lock, so searches see
the new sightings and never a half-updated index."""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipeline.core.config import Config
from pipeline.core.errors import ProwlError

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".mpg", ".mpeg", ".ts", ".m4v")


@dataclass
class Job:
    id: int
    source: str  # the file name shown (never the full path)
    camera: str | None
    status: str = "queued"  # queued | running | complete | failed | interrupted
    frames_done: int = 0
    frames_total: int | None = None
    people: int = 0
    detections: int = 0
    error: str | None = None
    queued_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    path: Path | None = field(default=None, repr=False)

    def public(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("path")
        return out


def under_roots(name: str, roots: list[Path]) -> Path:
    """The file ``name`` names (relative to a root, or absolute), resolved with every symlink
    followed, if it lies inside one of ``roots``; ProwlError otherwise, saying nothing about
    what exists outside them."""
    if not roots:
        raise ProwlError("ingest from the page is off: start the server with --ingest-root DIR")
    if "\x00" in name or not name.strip():
        raise ProwlError("give a video file under an ingest root")
    candidates = [Path(name)] if Path(name).is_absolute() else [r / name for r in roots]
    for candidate in candidates:
        try:
            real = candidate.resolve(strict=True)
        except (OSError, RuntimeError):
            continue
        for root in roots:
            if real.is_relative_to(root.resolve()) and real.is_file():
                return real
    raise ProwlError(f"{name!r} is not a video file under an ingest root")


def files_under(roots: list[Path], limit: int = 2000) -> list[dict[str, Any]]:
    """Video files under the roots (symlinks leading outside them left out), for the page."""
    out: list[dict[str, Any]] = []
    for i, root in enumerate(roots):
        real_root = root.resolve()
        for path in sorted(root.rglob("*")):
            if len(out) >= limit:
                return out
            if path.suffix.lower() not in VIDEO_SUFFIXES:
                continue
            try:
                real = path.resolve(strict=True)
            except (OSError, RuntimeError):
                continue
            if real.is_file() and real.is_relative_to(real_root):
                out.append(
                    {
                        "root": i,
                        "name": str(path.relative_to(root)),
                        "size_bytes": real.stat().st_size,
                    }
                )
    return out


@contextmanager
def outcome_of(job: Any, kind: str) -> Iterator[None]:
    """Run a job's work: a failure is recorded on the job in one line (the server goes on),
    and its finishing time in any case."""
    try:
        yield
    except ProwlError as exc:
        job.status, job.error = "failed", str(exc)
    except Exception as exc:
        log.exception("%s job %d failed", kind, job.id)
        job.status, job.error = "failed", f"internal error ({type(exc).__name__})"
    finally:
        job.finished_at = time.time()


class IngestJobs:
    """One worker thread taking jobs in order. ``after_job`` runs after each (the server
    catches its indexes up there)."""

    def __init__(self, cfg: Config, after_job: Callable[[], None]) -> None:
        self.cfg = cfg
        self.after_job = after_job
        self.jobs: dict[int, Job] = {}
        self._ids = itertools.count(1)
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._lock = threading.Lock()
        self.stop_event = threading.Event()
        self._models: Any = None  # pipeline.context.Models, built at the first job
        self._thread = threading.Thread(target=self._work, name="prowl-ingest", daemon=True)
        self._thread.start()

    def submit(self, path: Path, camera: str | None) -> Job:
        with self._lock:
            job = Job(next(self._ids), path.name, camera or None, path=path)
            self.jobs[job.id] = job
        self._queue.put(job)
        return job

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [j.public() for j in sorted(self.jobs.values(), key=lambda j: -j.id)]

    def get(self, job_id: int) -> dict[str, Any] | None:
        with self._lock:
            job = self.jobs.get(job_id)
            return job.public() if job else None

    def close(self, timeout_s: float = 60.0) -> None:
        """Stop: a running job commits what it did (its run resumes next time)."""
        self.stop_event.set()
        self._queue.put(None)
        self._thread.join(timeout=timeout_s)

    def _models_for(self, gallery: Any, footage: Path) -> Any:
        """The configured detector and the gallery's own embedder (so new sightings are
        searchable with the same vectors), built once and kept; an int8 detector is
        calibrated on each video as the CLI does (pipeline/context.py)."""
        from pipeline.context import build_models

        if self._models is None:
            from pipeline.query import embedder_config

            embedders = gallery.embedders()
            reid = embedder_config(embedders[0]) if len(embedders) == 1 else self.cfg.reid
            self._models = build_models(self.cfg, footage, reid)
        return self._models

    def _work(self) -> None:
        from pipeline.context import RunContext
        from pipeline.ingest import ingest_video
        from storage.gallery import Gallery

        while True:
            job = self._queue.get()
            if job is None or self.stop_event.is_set():
                return
            assert job.path is not None
            job.status, job.started_at = "running", time.time()
            with outcome_of(job, "ingest"), Gallery(self.cfg.db_url, self.cfg.data_dir) as gallery:
                models = self._models_for(gallery, job.path)

                def planned(total: int, job: Job = job) -> None:
                    job.frames_total = total

                def progress(frames: int, found: int, job: Job = job) -> None:
                    job.frames_done += frames
                    job.people += found

                ctx = RunContext(self.cfg, gallery, models, progress, self.stop_event, planned)
                try:
                    summary = ingest_video(ctx, job.path, camera_id=job.camera)
                finally:
                    self._models = ctx.models  # int8: keep the last calibration
                job.status = "complete" if summary.status != "interrupted" else "interrupted"
                job.detections = summary.detections
            try:
                self.after_job()
            except Exception:
                log.exception("catching the indexes up after job %d failed", job.id)


@dataclass
class ExportJob:
    id: int
    name: str
    status: str = "queued"  # queued | running | complete | failed
    done: int = 0
    total: int = 0
    size_bytes: int | None = None
    error: str | None = None
    queued_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    path: Path | None = field(default=None, repr=False)

    def public(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("path")
        out["zip"] = f"/api/exports/{self.id}/zip" if self.status == "complete" else None
        return out


class ExportJobs:
    """Evidence zips written by one worker thread, one at a time, with progress; the newest
    ``keep`` zips stay downloadable under ``folder``."""

    def __init__(self, folder: Path, keep: int = 20) -> None:
        self.folder, self.keep = folder, keep
        self.jobs: dict[int, ExportJob] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[ExportJob, Callable[..., Path]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="prowl-export", daemon=True)
        self._thread.start()

    def submit(
        self, name: str, work: Callable[[Path, Callable[[int, int], None]], Path]
    ) -> dict[str, Any]:
        with self._lock:
            job = ExportJob(next(self._ids), name)
            self.jobs[job.id] = job
            for old in sorted(self.jobs)[: -self.keep]:
                gone = self.jobs.pop(old)
                if gone.path is not None:
                    gone.path.unlink(missing_ok=True)
        self._queue.put((job, work))
        return job.public()

    def get(self, job_id: int) -> dict[str, Any] | None:
        with self._lock:
            job = self.jobs.get(job_id)
            return job.public() if job else None

    def path(self, job_id: int) -> Path | None:
        with self._lock:
            job = self.jobs.get(job_id)
            return job.path if job is not None and job.status == "complete" else None

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=60)

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            job, work = item
            job.status = "running"

            def progress(done: int, total: int, job: ExportJob = job) -> None:
                job.done, job.total = done, total

            with outcome_of(job, "export"):
                path = work(self.folder / f"{job.id}-{job.name}", progress)
                job.path, job.size_bytes = path, path.stat().st_size
                job.status = "complete"
