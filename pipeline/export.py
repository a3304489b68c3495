"""Tracks written out for other tools: MOT Challenge text files."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pipeline.outputs import make_dir, write_text
from storage.gallery import Gallery
from storage.search import resolve_videos
from storage.tracks import tracked_boxes, video_paths


def export_mot(
    gallery: Gallery, videos: Sequence[str], out_dir: Path
) -> list[tuple[Path, int, int]]:
    """One ``<video stem>.txt`` per video (all videos when ``videos`` is empty) in the MOT
    Challenge results format: frame (1-based), id, x, y, w, h, conf, -1, -1, -1. Returns
    (file, boxes, tracks) per file written."""
    written = []
    with gallery.session() as s:
        paths = video_paths(s)
        ids = resolve_videos(s, videos) if videos else sorted(paths)
        make_dir(out_dir)
        for vid in ids:
            rows = tracked_boxes(s, vid)
            path = out_dir / f"{Path(paths[vid]).stem}.txt"
            write_text(
                path,
                "".join(
                    f"{f + 1},{tid},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},"
                    f"{sc:.4f},-1,-1,-1\n"
                    for f, tid, x1, y1, x2, y2, sc in rows
                ),
            )
            written.append((path, len(rows), len({r[1] for r in rows})))
    return written
