"""Ingest of real footage (vtest.avi, frames 0-100) with the real YOLOv8n and default embedder
on the CPU, into SQLite and into the PostgreSQL server."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from pipeline.context import Models, RunContext
from pipeline.core.video import read_frames
from pipeline.ingest import ingest_video
from storage.gallery import Gallery
from storage.models import DetectionRow

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def first_100(vtest_gallery):  # type: ignore[no-untyped-def]
    return vtest_gallery


def _rows(gallery: Gallery) -> list[DetectionRow]:
    with gallery.session() as s:
        return list(s.scalars(select(DetectionRow).order_by(DetectionRow.id)))


def test_people_found_where_a_human_sees_them(first_100) -> None:  # type: ignore[no-untyped-def]
    _cfg, gallery, summary, _ = first_100
    assert summary.status == "complete" and summary.frames_processed == 101
    per_frame = gallery.detections_per_frame(1)
    assert set(per_frame) <= set(range(101))
    # Frame 100 shows at least four walkers on the campus path.
    assert per_frame.get(100, 0) >= 4
    assert sum(per_frame.values()) == summary.detections
    rows = _rows(gallery)
    assert all(r.timestamp_s == pytest.approx(r.frame_index / 10.0) for r in rows)


def test_every_detection_has_its_vector_in_rows_and_index(first_100) -> None:  # type: ignore[no-untyped-def]
    _cfg, gallery, summary, _ = first_100
    rows = _rows(gallery)
    assert len(rows) == summary.detections > 0
    vectors = np.stack([np.frombuffer(r.embedding, np.float32) for r in rows])
    assert vectors.shape == (len(rows), 512)  # the default OSNet embedder
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    index = gallery.index_for(rows[0].embedder_id)
    assert sorted(index.ids().tolist()) == [r.id for r in rows]
    sample = rows[len(rows) // 2]
    assert np.allclose(index.reconstruct(sample.id), np.frombuffer(sample.embedding, np.float32))


def test_stored_boxes_are_what_the_detector_returns(first_100, yolo, vtest_path) -> None:  # type: ignore[no-untyped-def]
    _cfg, gallery, _summary, _ = first_100
    frames = [f for f in read_frames(vtest_path, stop_index=101) if f.index in (0, 37, 100)]
    rows = _rows(gallery)
    for frame in frames:
        expected = yolo.detect([frame])[0]
        stored = np.array([[r.x1, r.y1, r.x2, r.y2] for r in rows if r.frame_index == frame.index])
        assert len(stored) == len(expected)
        order = np.lexsort(expected.xyxy.T[::-1])
        stored_order = np.lexsort(stored.T[::-1]) if len(stored) else []
        assert np.allclose(stored[stored_order], expected.xyxy[order], atol=1.0)


def test_postgres_gallery_gets_the_same_counts(
    first_100, yolo, default_embedder, vtest_path, pg_database, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from storage.gallery import wipe

    cfg, sqlite_gallery, summary, _ = first_100
    wipe(pg_database)
    pg = Gallery(pg_database, tmp_path)
    pg_summary = ingest_video(RunContext(cfg, pg, Models(yolo, default_embedder)), vtest_path)
    assert pg_summary.detections == summary.detections
    assert pg.detections_per_frame(1) == sqlite_gallery.detections_per_frame(1)
    assert len(pg.index_for(1)) == summary.detections
    again = ingest_video(
        RunContext(cfg, pg, Models(yolo, default_embedder)), vtest_path
    )  # idempotent
    assert again.status == "skipped" and pg.stats()["detections"] == summary.detections
    pg.close()
    wipe(pg_database)


def test_cli_ingest_and_stats(vtest_path: Path, tmp_path: Path) -> None:
    cmd = [sys.executable, "run_pipeline.py"]
    root = Path(__file__).resolve().parents[2]
    ingest = subprocess.run(
        [
            *cmd,
            "ingest",
            str(vtest_path),
            "--end",
            "1.5",
            "--stride",
            "2",
            "--reid",
            "hsv",
            "--camera",
            "gate",
            "--data-dir",
            str(tmp_path),
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert ingest.returncode == 0, ingest.stderr
    assert "8 processed" in ingest.stdout and "people detected" in ingest.stdout
    # the progress bar ran to the end, with its speed and the people count
    assert re.search(r"vtest\.avi: 100%\|.*\| 8/8 \[.*frame/s, people=\d+\]", ingest.stderr)
    with sqlite3.connect(tmp_path / "gallery.db") as db:
        frames = [
            r[0] for r in db.execute("SELECT DISTINCT frame_index FROM detections ORDER BY 1")
        ]
        cams = {r[0] for r in db.execute("SELECT camera_id FROM videos")}
    assert set(frames) <= {0, 2, 4, 6, 8, 10, 12, 14} and cams == {"gate"}
    stats = subprocess.run(
        [*cmd, "stats", "--data-dir", str(tmp_path)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert stats.returncode == 0, stats.stderr
    assert "embedder: hsv dim=192" in stats.stdout and "camera=gate" in stats.stdout
    bad = subprocess.run(
        [*cmd, "ingest", str(tmp_path / "nope.avi"), "--data-dir", str(tmp_path)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "no such file" in bad.stderr
