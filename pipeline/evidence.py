"""Evidence export: one zip with everything an analyst hands on about a search.

    summary.html          self-contained page (images inlined, one time axis, the journey)
    hits.csv, hits.json   the hits, as `prowl query --csv/--json` writes them
    query.json            what was asked: filters, k, marked sightings, embedder, when
    query/                the query image(s)
    thumbnails/, frames/  each hit's crop, and its full frame with the box drawn
    clips/                a short clip around each of the first ``max_clips`` hits (WebM)
    videos.json           each source video: name, camera, recorded path, size and sha256
    SHA256SUMS            the sha256 of every file above, for chain of custody

Used by `prowl query --evidence` and by the server's export button: one code path."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline import report, report_html
from pipeline.core.crops import encode_jpeg
from pipeline.core.errors import ProwlError
from pipeline.core.files import sha256_of
from pipeline.query import QueryResult
from storage.gallery import Gallery

log = logging.getLogger(__name__)

MAX_CLIPS = 20


def _name(rank: int, detection_id: int, ext: str) -> str:
    return f"rank{rank:03d}-det{detection_id}.{ext}"


CLIP_WORKERS = 4  # clips are cut in parallel, at most this many (and one per CPU core) at once


def _cut_clips(
    gallery: Gallery, result: QueryResult, max_clips: int, step: Callable[[], None]
) -> tuple[dict[int, bytes], list[str]]:
    """The clips of the first ``max_clips`` hits, cut in parallel threads (encoding is most of
    the work and OpenCV releases the GIL while it encodes); ``step`` after each clip."""
    from concurrent.futures import ThreadPoolExecutor, as_completed

    from pipeline.clips import clip_path

    wanted = [h for h in result.hits if h.rank <= max_clips]
    clips: dict[int, bytes] = {}
    missing: list[tuple[int, str]] = []
    if not wanted:
        return clips, []
    workers = max(1, min(len(wanted), os.cpu_count() or 1, CLIP_WORKERS))
    with ThreadPoolExecutor(workers, thread_name_prefix="clip") as pool:
        # at the source's own resolution: evidence keeps every pixel the camera recorded
        futures = {
            pool.submit(clip_path, gallery, h.detection_id, max_width_px=None): h for h in wanted
        }
        for future in as_completed(futures):
            h = futures[future]
            try:
                clips[h.detection_id] = future.result().read_bytes()
            except ProwlError as exc:
                missing.append((h.rank, f"#{h.rank}: {exc}"))
            step()
    return clips, [text for _rank, text in sorted(missing)]


def write_evidence(
    gallery: Gallery,
    result: QueryResult,
    target: Path,
    asked: dict[str, Any] | None = None,
    max_clips: int = MAX_CLIPS,
    progress: Callable[[int, int], None] | None = None,
    clips_cache_bytes: int | None = None,
    case: dict[str, Any] | None = None,
) -> Path:
    """Write the evidence zip of ``result`` to ``target`` (atomically: a temporary file renamed
    when complete). ``asked``: the query's parameters, recorded in query.json. ``progress``
    is told (steps done, steps in all) as frames, clips and hashes are made. ``case``: the
    case a saved subject belongs to (case, analyst, subject, notes), written to case.json
    and shown at the top of summary.html."""

    n_clips = sum(1 for h in result.hits if h.rank <= max_clips)
    steps, done = 2 + n_clips + 1, 0

    def step() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, steps)

    files: dict[str, bytes] = {}
    frames = report_html.frames_with_boxes(result.hits)
    step()
    files["summary.html"] = report_html.render_html(
        result, "prowl evidence", frames, case=case
    ).encode()
    if case:
        files["case.json"] = json.dumps(case, indent=2).encode()
    with tempfile.TemporaryDirectory() as tmp:
        report.write_csv(result, Path(tmp) / "hits.csv")
        report.write_json(result, str(Path(tmp) / "hits.json"))
        files["hits.csv"] = (Path(tmp) / "hits.csv").read_bytes()
        files["hits.json"] = (Path(tmp) / "hits.json").read_bytes()
    files["query.json"] = json.dumps(
        {
            "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
            "embedder": result.embedder,
            "hits": len(result.hits),
            **(asked or {}),
        },
        indent=2,
    ).encode()
    for i, crop in enumerate(result.crops):
        files[f"query/query-{i + 1}.jpg"] = encode_jpeg(crop, crop.shape[0], quality=95)
    clips, clips_missing = _cut_clips(gallery, result, max_clips, step)
    if clips_cache_bytes is not None and clips:
        from pipeline.clips import trim_cache

        trim_cache(gallery.data_dir / "clips", clips_cache_bytes)
    for h in result.hits:
        files[f"thumbnails/{_name(h.rank, h.detection_id, 'jpg')}"] = bytes(h.thumbnail)
        if h.detection_id in frames:
            files[f"frames/{_name(h.rank, h.detection_id, 'jpg')}"] = frames[h.detection_id]
        if h.detection_id in clips:
            files[f"clips/{_name(h.rank, h.detection_id, 'webm')}"] = clips[h.detection_id]
    videos = []
    for vid in sorted({h.video_id for h in result.hits}):
        video = gallery.video(vid)
        if video is None:  # removed since the search
            continue
        path = Path(video.path)
        videos.append(
            {
                "video_id": video.id,
                "name": path.name,
                "camera": video.camera_id,
                "recorded_path": video.path,
                "start_time": video.start_time,
                "fps": video.fps,
                "frames": video.frame_count,
                "size_bytes": video.size_bytes,
                "sha256": sha256_of(path) if path.is_file() else None,
                "available": path.exists(),
            }
        )
    step()
    files["videos.json"] = json.dumps(
        {"videos": videos, "clips_not_made": clips_missing}, indent=2
    ).encode()
    files["SHA256SUMS"] = "".join(
        f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in sorted(files.items())
    ).encode()

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_zip = target.with_name(f".{target.name}.part")
    with zipfile.ZipFile(tmp_zip, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            stored = name.endswith((".jpg", ".webm"))  # already compressed
            zf.writestr(name, data, zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED)
    tmp_zip.replace(target)
    step()
    return target
