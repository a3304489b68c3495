"""Overlapping work is never stored twice: time windows are half-open and add up within one
run of the same settings; an image folder is one source however its files change."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from pipeline.query_input import read_frame

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def _cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "run_pipeline.py", *argv, "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _rows(data: Path) -> list[tuple[int, int, int, int]]:
    with sqlite3.connect(data / "gallery.db") as db:
        return sorted(
            db.execute(
                "SELECT frame_index, CAST(round(x1) AS INT), coalesce(track_id, -1), "
                "embedding IS NOT NULL "
                "FROM detections"
            ).fetchall()
        )


def test_windows_add_up_to_one_uninterrupted_run(vtest_path: Path, tmp_path: Path) -> None:
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    base = [str(vtest_path), "--reid", "hsv"]
    assert _cli("ingest", *base, "--end", "4", "--data-dir", str(whole)).returncode == 0
    for window in (["--end", "2"], ["--start", "2", "--end", "4"]):
        r = _cli("ingest", *base, *window, "--data-dir", str(parts))
        assert r.returncode == 0, r.stderr
    # The two windows meet at 2 s (frame 20 belongs to the second only) and continue the same
    # tracks: the gallery equals the one-window run, boxes, tracks and embedded crops alike.
    got, want = _rows(parts), _rows(whole)
    assert len(got) == len(want) > 100
    assert got == want
    again = _cli("ingest", *base, "--start", "1", "--end", "3", "--data-dir", str(parts))
    assert again.returncode == 0 and "already ingested" in again.stdout
    assert _rows(parts) == want
    more = _cli("ingest", *base, "--end", "5", "--data-dir", str(parts))
    assert more.returncode == 0 and "10 processed (50 in all)" in more.stdout
    with sqlite3.connect(parts / "gallery.db") as db:
        assert db.execute("SELECT count(DISTINCT frame_index) FROM detections").fetchone()[0] > 40
        assert db.execute("SELECT max(frame_index) FROM detections").fetchone()[0] == 49


def test_an_image_folder_with_a_broken_file_is_never_stored_twice(
    vtest_path: Path, tmp_path: Path
) -> None:
    folder, data = tmp_path / "frames", tmp_path / "data"
    folder.mkdir()
    for i in range(6):
        cv2.imwrite(str(folder / f"{i:04d}.png"), read_frame(vtest_path, 30 + 10 * i))
    (folder / "0003b.png").write_bytes(b"")  # a zero-byte export leftover
    r = _cli("ingest", str(folder), "--reid", "hsv", "--data-dir", str(data))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "0003b.png" in r.stderr
    first = _rows(data)
    assert len({f for f, *_ in first}) == 6  # the six good frames are stored
    (folder / "0003b.png").unlink()
    r = _cli("ingest", str(folder), "--reid", "hsv", "--data-dir", str(data))
    assert r.returncode == 2 and "--force" in r.stderr and r.stderr.count("\n") == 1
    assert _rows(data) == first  # nothing added
    r = _cli("ingest", str(folder), "--reid", "hsv", "--data-dir", str(data), "--force")
    assert r.returncode == 0, r.stderr
    assert len(_rows(data)) == len(first)  # replaced, not doubled


def test_a_run_stored_in_full_but_never_finished_is_finished_by_the_next_call(
    vtest_path: Path, tmp_path: Path
) -> None:
    """The process died after its last commit and before it finished the run (tracks not
    derived, status 'running'): the same command finishes it instead of calling it done."""
    data = tmp_path / "g"
    argv = ("ingest", str(vtest_path), "--end", "3", "--reid", "hsv", "--data-dir", str(data))
    assert _cli(*argv).returncode == 0
    with sqlite3.connect(data / "gallery.db") as db:
        tracks = db.execute("SELECT count(*) FROM tracks").fetchone()[0]
        assert tracks > 0
        db.execute("DELETE FROM tracks")
        db.execute("UPDATE ingest_runs SET status = 'running', finished_at = NULL")
    rows = _rows(data)
    again = _cli(*argv)
    assert again.returncode == 0, again.stderr
    with sqlite3.connect(data / "gallery.db") as db:
        assert db.execute("SELECT status FROM ingest_runs").fetchall() == [("complete",)]
        assert db.execute("SELECT count(*) FROM tracks").fetchone()[0] == tracks
    assert _rows(data) == rows  # finished, not ingested again
