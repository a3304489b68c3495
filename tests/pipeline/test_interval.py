"""detector.every_frames: the detector on every Nth frame, the tracker's predicted boxes on the
frames between, stored and marked as predicted."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest


def _ingest(cfg: Any, models: Any, video: Path, data: Path, every: int) -> list[Any]:
    from sqlalchemy import select

    from pipeline.context import RunContext
    from pipeline.ingest import ingest_video
    from storage.gallery import Gallery
    from storage.models import DetectionRow, TrackRow

    run_cfg = replace(cfg, data_dir=data, detector=replace(cfg.detector, every_frames=every))
    with Gallery(run_cfg.db_url, data) as g:
        summary = ingest_video(RunContext(run_cfg, g, models), video)
        assert summary.frames_processed == 30
        with g.session() as s:
            rows = list(s.execute(select(DetectionRow).order_by(DetectionRow.id)).scalars())
            pictures = set(s.execute(select(TrackRow.best_detection_id)).scalars())
        # a track's picture is a detected box, never a predicted one
        assert pictures and all(r.predicted is None for r in rows if r.id in pictures)
        if every > 1:  # its clip draws predicted boxes amber, detected ones red
            _check_clip_colours(g, rows)
        return rows


def _check_clip_colours(gallery: Any, rows: list[Any]) -> None:
    import cv2
    import numpy as np

    from pipeline.clips import clip_path

    row = next(r for r in rows if r.predicted is None and r.frame_index == 9 and r.track_id)
    clip = clip_path(gallery, row.id, seconds=1.0, max_width_px=None)
    cap = cv2.VideoCapture(str(clip))
    frames = []
    while True:
        ok, image = cap.read()
        if not ok:
            break
        frames.append(image.astype(np.int16))
    cap.release()

    def share(image: Any, bgr: tuple[int, int, int]) -> float:
        return float((np.abs(image - np.array(bgr)).max(axis=2) < 40).mean())

    # the clip holds frames 0-19; frame 9 is detected (red), frame 10 predicted (amber)
    assert share(frames[9], (0, 0, 255)) > share(frames[10], (0, 0, 255))
    assert share(frames[10], (0, 190, 255)) > 2 * share(frames[9], (0, 190, 255))


@pytest.mark.slow
def test_every_third_frame_detected_and_the_rest_predicted(
    cfg_default, yolo, default_embedder, vtest_path, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    from evaluation.motion_bench import box_recall
    from pipeline.context import Models

    models = Models(yolo, default_embedder)
    cfg = replace(cfg_default, video=replace(cfg_default.video, end_s=3.0))  # frames 0-29
    every1 = _ingest(cfg, models, vtest_path, tmp_path / "one", 1)
    every3 = _ingest(cfg, models, vtest_path, tmp_path / "three", 3)

    def boxes(rows: list[Any], frames: set[int]) -> dict[int, Any]:
        out: dict[int, list[list[float]]] = {}
        for r in rows:
            if r.frame_index in frames:
                out.setdefault(r.frame_index, []).append([r.x1, r.y1, r.x2, r.y2])
        return {f: np.asarray(b, np.float32) for f, b in out.items()}

    detected = set(range(0, 30, 3))
    # on the detected frames: the detector's own boxes, as every frame's run has them
    assert box_recall(boxes(every1, detected), boxes(every3, detected)) == 1.0
    assert box_recall(boxes(every3, detected), boxes(every1, detected)) == 1.0
    assert all(r.predicted is None for r in every3 if r.frame_index in detected)
    assert all(r.predicted is None for r in every1)
    # between them: predicted boxes of tracks the detector found, never embedded
    between = [r for r in every3 if r.frame_index not in detected]
    assert len(between) > 30
    assert all(r.predicted is True and r.embedding is None for r in between)
    found_tracks = {r.track_id for r in every3 if r.frame_index in detected}
    assert {r.track_id for r in between} <= found_tracks
    # and they are close to where the detector, run on those frames, finds the people
    skipped = set(range(30)) - detected
    # (measured: 0.88 of the predicted boxes are on a detected person, 0.72 of those covered)
    assert box_recall(boxes(between, skipped), boxes(every1, skipped)) > 0.75
    assert box_recall(boxes(every1, skipped), boxes(between, skipped)) > 0.6
