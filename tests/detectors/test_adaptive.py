"""The detector's input size follows the footage: campus footage keeps 640 px, footage whose
people are small gets a larger input, every window of a video gets the same one, and the
larger input finds the people the 640-px one misses."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.core.types import Frame

pytestmark = pytest.mark.slow


def _mosaics(vtest_path: Path, grid: int, count: int) -> list[np.ndarray]:
    from pipeline.core.video import read_frames

    src = [f.image for f in read_frames(vtest_path, start_s=5, end_s=75, stride=7)]
    out = []
    for m in range(count):
        tiles = [src[(m * 3 + j * 7) % len(src)] for j in range(grid * grid)]
        rows = [np.concatenate(tiles[r * grid : (r + 1) * grid], axis=1) for r in range(grid)]
        out.append(np.ascontiguousarray(np.concatenate(rows, axis=0)))
    return out


def test_campus_footage_keeps_640(cfg_default, yolo, vtest_path) -> None:  # type: ignore[no-untyped-def]
    from detectors.adaptive import input_size_for
    from pipeline.core.video import sample_frames

    frames = sample_frames(vtest_path, 8)
    assert len(frames) == 8 and len({f.index for f in frames}) == 8
    assert input_size_for(yolo, frames, cfg_default) == 640


def test_small_people_get_a_larger_input_that_finds_them(cfg_default, yolo, vtest_path) -> None:  # type: ignore[no-untyped-def]
    from detectors.adaptive import settings_of, sized_for

    images = _mosaics(vtest_path, 4, 3)
    frames = [Frame(im, i, i / 10, "mosaic") for i, im in enumerate(images)]
    sized = sized_for(cfg_default, yolo, frames)
    cfg = settings_of(cfg_default, sized)
    assert 640 < sized.input_px <= 1280 and sized.input_px % 32 == 0
    assert cfg.detector.imgsz_px == sized.input_px  # the settings describe the detector
    at_640 = sum(len(d) for d in yolo.detect(frames))
    larger = sum(len(d) for d in sized.detect(frames))
    assert larger >= 1.3 * at_640

    off = replace(cfg_default, detector=replace(cfg_default.detector, min_person_px=0))
    assert sized_for(off, yolo, frames) is yolo and settings_of(off, yolo) == off


def test_windows_of_small_people_footage_share_one_run(cfg_default, vtest_path, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from cli import main

    images = _mosaics(vtest_path, 3, 8)
    video = tmp_path / "street.avi"
    h, w = images[0].shape[:2]
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 4.0, (w, h))
    for im in images:
        writer.write(im)
    writer.release()
    data = ["--data-dir", str(tmp_path / "g"), "-q"]
    assert main(["ingest", str(video), "--end", "1", *data]) == 0
    assert main(["ingest", str(video), "--start", "1", *data]) == 0

    import sqlite3

    db = sqlite3.connect(tmp_path / "g" / "gallery.db")
    runs = db.execute("select settings_key, frames_processed from ingest_runs").fetchall()
    assert len(runs) == 1, runs
    assert "imgsz=640" not in runs[0][0] and runs[0][1] == 8
