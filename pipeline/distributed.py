"""`prowl ingest --executor ray`: a video's not-yet-done frames split into time segments, run
by Ray actors that load the detector and embedder once, decode their own segment (frames
never travel), and commit each segment to the shared PostgreSQL gallery exactly once
(`storage.segments`). Afterwards the driver joins the tracks across segment boundaries,
finishes the run and brings the FAISS index up to the rows.

Ray is an optional extra (``pip install 'prowl[ray]'``); without ``--ray-address`` a local
Ray instance is started for the run and stopped after it."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from pipeline.context import RunContext
from pipeline.core.config import Config
from pipeline.core.errors import ConfigError, ProwlError, one_line
from pipeline.runs import IngestSummary, PreparedRun, ProgressFn, prepare_run
from pipeline.segments import Segment, plan_segments, process_segment
from storage.gallery import Gallery

log = logging.getLogger(__name__)


class SegmentWorker:
    """One Ray actor: its models are built once, then it takes segment after segment."""

    def __init__(self, cfg: Config, db_url: str, data_dir: str, fps: float, video: str) -> None:
        from pipeline.context import build_models

        self.cfg, self.fps = cfg, fps
        self.models = build_models(cfg, video)  # int8: calibrated on `video`
        self.gallery = Gallery(db_url, Path(data_dir), must_exist=True)
        import ray

        self.node = ray.get_runtime_context().get_node_id()

    def pid(self) -> int:
        return os.getpid()

    def run(self, segment: Segment) -> dict[str, Any]:
        from storage.segments import commit_segment

        rows = process_segment(
            segment, self.cfg, self.fps, self.models.detector, self.models.embedder
        )
        t = time.perf_counter()
        committed = commit_segment(
            self.gallery,
            segment.run_id,
            segment.first,
            rows.reached,
            rows.frames,
            rows.detections,
            rows.local_tracks,
            rows.lead_in_boxes,
        )
        stages = dict(rows.stage_s, store=time.perf_counter() - t)
        return {
            "first": segment.first,
            "frames": rows.frames,
            "detections": len(rows.detections),
            "committed": committed,
            "seconds": rows.seconds,
            "stage_s": stages,
            "gated": rows.gated,
            "pid": os.getpid(),
            "node": self.node,
        }


def check_shared_database(cfg: Config) -> None:
    if not cfg.db_url.startswith("postgresql"):
        raise ConfigError(
            "--executor ray needs a gallery every worker can reach: pass --db "
            "postgresql+psycopg://USER@HOST:5432/DB (SQLite is one machine's file)"
        )


def connect(address: str | None, num_cpus: int | None = None) -> Any:
    """Ray, connected (``address``: a running cluster, host:port) or started locally."""
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "--executor ray needs Ray: pip install 'prowl[ray]' (or use --executor inprocess)"
        ) from None
    if ray.is_initialized():
        return ray
    if address and address != "auto":
        host, _, port = address.removeprefix("ray://").rpartition(":")
        try:
            with socket.create_connection((host or "127.0.0.1", int(port)), timeout=5):
                pass
        except (OSError, ValueError):
            raise ConfigError(
                f"cannot reach a Ray cluster at {address}; start one (`ray start --head`) or "
                "leave out --ray-address to run Ray on this machine"
            ) from None
    kwargs: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "logging_level": logging.ERROR,
    }
    if not address:
        kwargs.update(num_cpus=num_cpus or os.cpu_count(), object_store_memory=200 << 20)
    ray.init(address=address or None, **kwargs)
    return ray


def ingest_distributed(
    ctx: RunContext,
    path: Path,
    camera_id: str | None = None,
    force: bool = False,
    on_segment: Callable[[dict[str, Any], list[Any]], None] | None = None,
) -> IngestSummary:
    """The Ray counterpart of ``ingest_video``: same runs, keys and rows. ``on_segment`` is
    told each finished segment's report and the actors (tests kill one through it)."""
    cfg = ctx.cfg
    check_shared_database(cfg)
    ray = connect(
        cfg.executor.address
    )  # before anything is stored: an unreachable cluster changes nothing
    prep = prepare_run(ctx, path, camera_id, force)
    try:
        return _run_segments(
            prep, cfg, ctx.gallery, ctx.progress, ctx.stop_event, ctx.planned, on_segment, ray
        )
    finally:
        prep.release()


def _run_segments(
    prep: PreparedRun,
    cfg: Config,
    gallery: Gallery,
    progress: ProgressFn | None,
    stop_event: threading.Event | None,
    planned: Callable[[int], None] | None,
    on_segment: Callable[[dict[str, Any], list[Any]], None] | None,
    ray: Any,
) -> IngestSummary:
    ex = cfg.executor
    summary = prep.summary
    if prep.skipped and prep.run.status == "complete":
        return summary
    if prep.skipped:  # every segment is in, but the run was not finished (the driver died)
        _finish(gallery, prep.run)
        summary.status = "complete"
        return summary
    run, info = prep.run, prep.info
    # The lead-in must cover the tracker's memory of lost people (tracking.buffer_s), or a
    # person re-found after an occlusion just before a cut gets a new track in the segment.
    lead_s = max(ex.overlap_s, cfg.tracking.buffer_s + 1.0)
    segments = plan_segments(
        str(prep.path), run.id, prep.gaps, info.fps or 25.0, ex.segment_s, lead_s
    )
    if planned is not None:
        planned(prep.planned_frames)
    workers_n = ex.workers or max(
        1, int(ray.cluster_resources().get("CPU", 1) // ex.cpus_per_worker)
    )
    workers_n = min(workers_n, len(segments))
    # the workers use this run's settings as they are (the input size already chosen)
    worker_cfg = replace(prep.cfg, detector=replace(prep.cfg.detector, min_person_px=0))
    actor = ray.remote(num_cpus=ex.cpus_per_worker, max_restarts=-1, max_task_retries=3)(
        SegmentWorker
    )
    actors = [
        actor.remote(
            worker_cfg, gallery.url, str(gallery.data_dir), info.fps or 25.0, str(prep.path)
        )
        for _ in range(workers_n)
    ]
    started = time.perf_counter()
    todo = list(reversed(segments))
    busy: dict[Any, Any] = {}
    stage_s: dict[str, float] = {}
    frames_read = 0
    nodes: set[str] = set()
    try:
        for a in actors:
            if todo:
                busy[a.run.remote(todo.pop())] = a
        while busy:
            ready, _ = ray.wait(list(busy), num_returns=1)
            done_ref = ready[0]
            a = busy.pop(done_ref)
            try:
                report = ray.get(done_ref)
            except Exception as exc:
                raise ProwlError(
                    f"{prep.path.name}: a segment failed: {one_line(exc, last=True, limit=300)}"
                ) from None
            for k, v in report["stage_s"].items():
                stage_s[k] = stage_s.get(k, 0.0) + v
            frames_read += report["frames"]
            summary.frames_gated += report["gated"]
            nodes.add(report["node"])
            if progress is not None:
                progress(report["frames"], report["detections"])
            if stop_event is not None and stop_event.is_set():
                todo.clear()
            if todo:
                busy[a.run.remote(todo.pop())] = a
            if on_segment is not None:  # after the actor got its next segment
                on_segment(report, actors)
    except BaseException as exc:
        for ref in busy:
            ray.cancel(ref, force=True)
        gallery.abandon_run(run, one_line(exc, last=True, limit=300), drop=False)
        raise
    finally:
        for a in actors:
            ray.kill(a)
    from storage.segments import stitch_run

    summary.elapsed_s = time.perf_counter() - started
    summary.stage_s = stage_s
    summary.frames_read = frames_read
    joined = stitch_run(gallery, run.id)
    log.info(
        "%s: %d segments, %d tracks joined across their boundaries",
        prep.path.name,
        len(segments),
        joined,
    )
    fresh = gallery.find_run(run.video_id, run.settings_key)
    assert fresh is not None
    gallery.index_for(run.embedder_id)  # loaded (and caught up) if it was not yet ...
    gallery.sync_index(run.embedder_id)  # ... and caught up with the workers' rows if it was
    gallery.save_indexes()
    interrupted = stop_event is not None and stop_event.is_set()
    if not interrupted:
        gallery.finish_run(fresh)
    summary.status = "interrupted" if interrupted else "complete"
    summary.frames_processed = fresh.frames_processed
    summary.frames_new = fresh.frames_processed - prep.frames_before
    summary.detections = fresh.detections_count
    summary.embedded = fresh.embedded_count
    summary.tracks = gallery.track_count(run.id)
    summary.segments = len(segments)
    summary.workers = workers_n
    summary.nodes = len(nodes)
    return summary


def _finish(gallery: Gallery, run: Any, finish: bool = True) -> Any:
    """Join the tracks across segment cuts, bring the index up to the rows, finish the run."""
    from storage.segments import stitch_run

    joined = stitch_run(gallery, run.id)
    log.info("run %d: %d tracks joined across segment boundaries", run.id, joined)
    fresh = gallery.find_run(run.video_id, run.settings_key)
    assert fresh is not None
    gallery.index_for(run.embedder_id)  # loaded (and caught up) if it was not yet ...
    gallery.sync_index(run.embedder_id)  # ... and caught up with the workers' rows if it was
    gallery.save_indexes()
    if finish:
        gallery.finish_run(fresh)
    return fresh
