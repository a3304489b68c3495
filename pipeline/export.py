"""Tracks written out for other tools: MOT Challenge text files."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pipeline.core.outputs import make_dir, write_text
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


def export_reid_set(
    gallery: Gallery, out_dir: Path, min_sightings: int = 20, per_track: int = 8
) -> tuple[int, int, int]:
    """The gallery's own people as a re-ID set in the Market-1501 layout, from its stored
    thumbnails: each track with at least ``min_sightings`` boxes is an identity; one query
    from the first third of the track (as camera 1) and up to ``per_track`` gallery images
    from its last third (as camera 2), so the protocol only scores matches across a time gap.
    Labels come from the tracker, not from people: a switched track is a wrong label.
    Returns (identities, query images, gallery images)."""
    from storage.tracks import track_crops

    make_dir(out_dir / "query")
    make_dir(out_dir / "bounding_box_test")
    identities = nq = ng = 0
    with gallery.session() as s:
        for pid, crops in enumerate(track_crops(s, min_sightings), start=1):
            third = max(1, len(crops) // 3)
            first, last = crops[:third], crops[-third:]
            picks = np.linspace(0, len(last) - 1, min(per_track, len(last))).round().astype(int)
            q_frame, q_jpeg = first[len(first) // 2]
            (out_dir / "query" / f"{pid:04d}_c1s1_{q_frame:06d}_00.jpg").write_bytes(q_jpeg)
            for j in sorted(set(picks.tolist())):
                frame, jpeg = last[j]
                (out_dir / "bounding_box_test" / f"{pid:04d}_c2s1_{frame:06d}_00.jpg").write_bytes(
                    jpeg
                )
                ng += 1
            identities, nq = identities + 1, nq + 1
    return identities, nq, ng
