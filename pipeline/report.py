"""What a query shows a person: a terminal table, JSON/CSV exports, and one self-contained
HTML page (images inlined as data URIs; opens offline from a file, no scripts)."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pipeline.core import outputs
from pipeline.core.timeline import offset_clock, shown, wall_time
from pipeline.journey import journey
from pipeline.query import QueryResult
from storage.gallery import Hit
from storage.tracks import TrackHit

log = logging.getLogger(__name__)


clock = offset_clock  # hh:mm:ss.mmm from the start of a video


def _box(h: Hit) -> str:
    return ",".join(str(round(v)) for v in h.xyxy)


def hit_record(h: Hit) -> dict[str, Any]:
    rec = asdict(h)
    rec.pop("thumbnail")
    rec["timestamp"] = clock(h.timestamp_s)
    rec["wall_time"] = wall_time(h.video_start, h.timestamp_s)
    rec["xyxy"] = [round(v, 1) for v in h.xyxy]
    rec["similarity"] = round(h.similarity, 5)
    rec["score"] = round(h.score, 4)
    return rec


def clothes(upper: str | None, lower: str | None) -> str:
    """'red/blue': upper and lower clothing colour (the most-voted of each; ? unknown)."""
    return f"{(upper or '?').split(',')[0]}/{(lower or '?').split(',')[0]}"


def table(hits: list[Hit]) -> str:
    head = (
        "rank",
        "similarity",
        "camera",
        "video",
        "frame",
        "time",
        "box",
        "det.score",
        "clothes",
        "id",
    )
    rows = [head] + [
        (
            str(h.rank),
            f"{h.similarity:.4f}",
            h.camera_id,
            Path(h.video_path).name,
            str(h.frame_index),
            shown(h.video_start, h.timestamp_s),
            _box(h),
            f"{h.score:.2f}",
            clothes(h.upper_colours, h.lower_colours),
            str(h.detection_id),
        )
        for h in hits
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)


def track_record(t: TrackHit) -> dict[str, Any]:
    rec = asdict(t)
    rec.pop("thumbnail")
    rec.update(
        enter=clock(t.first_s),
        leave=clock(t.last_s),
        enter_wall=wall_time(t.video_start, t.first_s),
        leave_wall=wall_time(t.video_start, t.last_s),
        similarity=round(t.similarity, 5),
        best_xyxy=[round(v, 1) for v in t.best_xyxy],
    )
    return rec


def track_table(tracks: list[TrackHit]) -> str:
    head = (
        "rank",
        "similarity",
        "camera",
        "video",
        "enter",
        "leave",
        "sightings",
        "clothes",
        "track",
        "best det",
    )
    rows = [head] + [
        (
            str(t.rank),
            f"{t.similarity:.4f}",
            t.camera_id,
            Path(t.video_path).name,
            shown(t.video_start, t.first_s),
            shown(t.video_start, t.last_s),
            str(t.sightings),
            clothes(t.upper_colours, t.lower_colours),
            "-" if t.track_id is None else str(t.track_id),
            str(t.best_detection_id),
        )
        for t in tracks
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)


def write_json(result: QueryResult, target: str) -> None:
    payload: dict[str, Any] = {
        "embedder": result.embedder,
        "reranked": result.reranked,
        "timings_s": result.timings_s,
        "hits": [hit_record(h) for h in result.hits],
    }
    if result.tracks:
        payload["tracks"] = [track_record(t) for t in result.tracks]
    payload["journey"] = [s.record() for s in journey(result)]
    payload["notes"] = result.notes
    text = json.dumps(payload, indent=2)
    if target == "-":
        print(text)
    else:
        outputs.write_text(Path(target), text + "\n")


def write_csv(result: QueryResult, target: Path) -> None:
    if result.tracks:
        fields = [
            "rank",
            "similarity",
            "camera_id",
            "video_path",
            "enter",
            "leave",
            "enter_wall",
            "leave_wall",
            "first_s",
            "last_s",
            "first_frame",
            "last_frame",
            "sightings",
            "track_id",
            "best_detection_id",
        ]
        records = [track_record(t) for t in result.tracks]
    else:
        fields = [
            "rank",
            "similarity",
            "camera_id",
            "video_path",
            "frame_index",
            "timestamp_s",
            "timestamp",
            "wall_time",
            "x1",
            "y1",
            "x2",
            "y2",
            "score",
            "track_id",
            "detection_id",
        ]
        records = []
        for h in result.hits:
            rec = hit_record(h)
            x1, y1, x2, y2 = rec.pop("xyxy")
            rec.update(x1=x1, y1=y1, x2=x2, y2=y2)
            records.append(rec)
    outputs.write_csv(target, fields, records)
