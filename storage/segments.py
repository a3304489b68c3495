"""Segments of a distributed ingest: each committed exactly once, then joined into tracks.

``commit_segment`` writes one segment's detections, the run's counters and done ranges and
the segment's own row in ONE transaction, with the run row locked: a worker killed before
the commit leaves nothing, and a retried segment whose first attempt did commit (the worker
died after it) finds its row and writes nothing (the unique (run, first frame) key makes
that hold even without the lock). ``stitch_run`` joins the tracks that cross segment
boundaries once every segment is in (the tracker's own ids, ``raw_track_id``, before the
run's appearances are derived from them)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from sqlalchemy import select, update

from pipeline.core.boxes import iou_matrix
from pipeline.core.frameranges import load_ranges, merge_ranges
from storage.database import bump_version
from storage.gallery import Gallery, NewDetection, detection_rows
from storage.models import TRACK_ID_STRIDE, DetectionRow, RunRow, SegmentRow
from storage.tracks import fill_raw_track_ids, rebuild_tracks

MATCH_IOU = 0.5  # a lead-in box and a stored box of the same frame are the same person


def commit_segment(
    gallery: Gallery,
    run_id: int,
    first: int,
    reached: int,
    frames: int,
    detections: Sequence[NewDetection],
    local_tracks: int,
    lead_in: dict[int, list[tuple[int, float, float, float, float]]],
) -> bool:
    """Store one segment (frames [first, reached)); False if it was already stored.
    ``detections`` carry the segment's own track numbers 1..local_tracks; they get the run's
    next free block of track ids here."""
    from sqlalchemy import insert

    with gallery.session() as s, s.begin():
        run = s.execute(select(RunRow).where(RunRow.id == run_id).with_for_update()).scalar_one()
        done_before = s.scalar(
            select(SegmentRow.id).where(
                SegmentRow.run_id == run_id, SegmentRow.first_frame == first
            )
        )
        if done_before is not None:
            return False
        base = run.next_track_id

        def global_id(local: int) -> int:
            return run_id * TRACK_ID_STRIDE + base + local - 1

        rows = detection_rows(
            run,
            [
                d if d.track_id is None else replace(d, track_id=global_id(d.track_id))
                for d in detections
            ],
        )
        if rows:
            s.execute(insert(DetectionRow), rows)
        done = merge_ranges([*load_ranges(run.done_ranges), (first, reached)])
        s.execute(
            update(RunRow)
            .where(RunRow.id == run_id)
            .values(
                next_track_id=base + local_tracks,
                next_frame=max(run.next_frame, reached),
                frames_processed=RunRow.frames_processed + frames,
                detections_count=RunRow.detections_count + len(rows),
                embedded_count=RunRow.embedded_count
                + sum(d.embedding is not None for d in detections),
                done_ranges=json.dumps(done),
            )
        )
        s.add(
            SegmentRow(
                run_id=run_id,
                first_frame=first,
                stop_frame=reached,
                detections=len(rows),
                lead_in=json.dumps({str(global_id(k)): v for k, v in lead_in.items()}),
            )
        )
        bump_version(s)
    return True


def stitch_run(gallery: Gallery, run_id: int) -> int:
    """Join each track that a segment picked up in its lead-in with the track the previous
    segment stored for the same person in those frames (boxes matched by IoU, majority of
    the lead-in frames), then rebuild the run's tracks. Returns how many were joined."""
    with gallery.session() as s, s.begin():
        run = s.get(RunRow, run_id)
        assert run is not None
        fill_raw_track_ids(s, run_id)
        parent: dict[int, int] = {}

        def root(t: int) -> int:
            while parent.get(t, t) != t:
                t = parent[t]
            return t

        segments = s.scalars(
            select(SegmentRow).where(SegmentRow.run_id == run_id).order_by(SegmentRow.first_frame)
        ).all()
        for seg in segments:
            lead_in = json.loads(seg.lead_in or "{}")
            frames = sorted({int(b[0]) for boxes in lead_in.values() for b in boxes})
            # the rows the previous segment stored in this segment's lead-in: one query
            stored: dict[int, tuple[list[tuple[float, ...]], list[int]]] = {}
            for f, x1, y1, x2, y2, tid in s.execute(
                select(
                    DetectionRow.frame_index,
                    DetectionRow.x1,
                    DetectionRow.y1,
                    DetectionRow.x2,
                    DetectionRow.y2,
                    DetectionRow.raw_track_id,
                ).where(
                    DetectionRow.run_id == run_id,
                    DetectionRow.frame_index.in_(frames),
                    DetectionRow.raw_track_id > 0,
                )
            ):
                boxes_f, ids_f = stored.setdefault(int(f), ([], []))
                boxes_f.append((x1, y1, x2, y2))
                ids_f.append(int(tid or 0))
            for key, boxes in lead_in.items():
                votes: Counter[int] = Counter()
                for f, *box in boxes:
                    if int(f) not in stored:
                        continue
                    candidates, ids = stored[int(f)]
                    overlap = iou_matrix(np.asarray([box]), np.asarray(candidates))[0]
                    best = int(np.argmax(overlap))
                    if overlap[best] >= MATCH_IOU:
                        votes[ids[best]] += 1
                if not votes:
                    continue
                earlier, n = votes.most_common(1)[0]
                if 2 * n >= len(boxes):
                    a, b = root(int(key)), root(earlier)
                    if a != b:
                        parent[max(a, b)] = min(a, b)
        joined = 0
        for t in sorted(parent):
            r = root(t)
            if r != t:
                s.execute(
                    update(DetectionRow)
                    .where(DetectionRow.run_id == run_id, DetectionRow.raw_track_id == t)
                    .values(raw_track_id=r, track_id=r)
                )
                joined += 1
        rebuild_tracks(s, run)
    return joined
