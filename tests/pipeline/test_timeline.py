"""Wall-clock time: where a source's start comes from, an image folder's own timeline, and
absolute times in what a query shows and exports."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.core.timeline import exif_time, mp4_creation_time, shown, stamp_in_name, wall_time
from pipeline.core.video import probe, read_frames
from pipeline.query_input import read_frame

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "name,when",
    [
        ("lobby_20261125_154433.mp4", datetime(2026, 11, 25, 15, 44, 33)),
        ("2026-11-25T15:44:33.250.jpg", datetime(2026, 11, 25, 15, 44, 33, 250000)),
        ("cam3-20261125-154433-5.png", datetime(2026, 11, 25, 15, 44, 33, 500000)),
        ("2026-11-25 15.44.33.jpg", datetime(2026, 11, 25, 15, 44, 33)),
        ("frame_000123.jpg", None),  # a frame number is not a time
        ("20261345_256199.jpg", None),  # digits in the shape of a time, but not one
        ("vtest.avi", None),
    ],
)
def test_times_in_file_names(name: str, when: datetime | None) -> None:
    assert stamp_in_name(name) == when


def test_mp4_creation_time_is_read_from_the_container(tmp_path: Path) -> None:
    """A minimal MP4 box layout: ftyp, then moov holding mvhd (version 0)."""
    created = datetime(2026, 11, 25, 8, 0, 0)
    seconds = int((created - datetime(1904, 1, 1)).total_seconds())
    mvhd_body = bytes([0, 0, 0, 0]) + struct.pack(">II", seconds, seconds) + bytes(88)
    mvhd = struct.pack(">I4s", 8 + len(mvhd_body), b"mvhd") + mvhd_body
    moov = struct.pack(">I4s", 8 + len(mvhd), b"moov") + mvhd
    ftyp = struct.pack(">I4s", 16, b"ftyp") + b"isom" + bytes(4)
    path = tmp_path / "clip.mp4"
    path.write_bytes(ftyp + moov)
    assert mp4_creation_time(path) == created
    unset = tmp_path / "unset.mp4"
    unset.write_bytes(ftyp + moov.replace(struct.pack(">II", seconds, seconds), bytes(8)))
    assert mp4_creation_time(unset) is None
    assert mp4_creation_time(tmp_path / "missing.mp4") is None


def test_exif_time_of_a_photo(tmp_path: Path) -> None:
    from PIL import Image

    img = Image.new("RGB", (32, 64), (120, 30, 30))
    exif = Image.Exif()
    exif.get_ifd(0x8769)[36867] = "2026:11:25 15:44:33"
    exif.get_ifd(0x8769)[37521] = "25"
    img.save(tmp_path / "a.jpg", exif=exif)
    assert exif_time(tmp_path / "a.jpg") == datetime(2026, 11, 25, 15, 44, 33, 250000)
    Image.new("RGB", (8, 8)).save(tmp_path / "plain.jpg")
    assert exif_time(tmp_path / "plain.jpg") is None


def test_wall_time_and_what_tables_show() -> None:
    assert wall_time("2026-11-25T15:44:33", 1.5) == "2026-11-25T15:44:34.500"
    assert wall_time("2026-11-25T23:59:59+01:00", 2.0) == "2026-11-26T00:00:01.000+01:00"
    assert wall_time(None, 3.0) is None
    assert shown(None, 3.25) == "00:00:03.250"
    assert shown("2026-11-25T15:44:33", 0.0) == "2026-11-25 15:44:33.000"


def _timed_folder(tmp_path: Path, vtest: Path, offsets: list[float]) -> Path:
    folder = tmp_path / "frames"
    folder.mkdir()
    t0 = datetime(2026, 11, 25, 15, 44, 33)
    for i, off in enumerate(offsets):
        when = t0 + timedelta(seconds=off)
        name = f"cam_{when:%Y%m%d_%H%M%S}_{when.microsecond // 1000:03d}.jpg"
        cv2.imwrite(str(folder / name), read_frame(vtest, 40 + 5 * i))
    return folder


def test_a_folder_of_timed_frames_keeps_its_own_timeline(tmp_path: Path, vtest_path: Path) -> None:
    folder = _timed_folder(tmp_path, vtest_path, [0.0, 0.5, 1.5, 2.0, 3.0])
    info = probe(folder)
    assert info.timestamps_s == (0.0, 0.5, 1.5, 2.0, 3.0)
    assert info.start_time == "2026-11-25T15:44:33"
    # --start/--end are seconds of that timeline, half-open
    frames = list(read_frames(folder, start_s=1.0, end_s=2.0))
    assert [(f.index, f.timestamp_s) for f in frames] == [(2, 1.5)]
    # --fps replaces it with a regular one
    fixed = list(read_frames(folder, image_fps=5.0))
    assert [f.timestamp_s for f in fixed] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8])
    plain = tmp_path / "plain"
    plain.mkdir()
    for i in range(3):
        cv2.imwrite(str(plain / f"{i:04d}.png"), np.zeros((8, 8, 3), np.uint8))
    assert probe(plain).timestamps_s is None and probe(plain).fps == 25.0


@pytest.mark.slow
def test_query_shows_and_exports_the_time_of_day(tmp_path: Path, vtest_path: Path) -> None:
    folder = _timed_folder(tmp_path, vtest_path, [0.0, 0.5, 1.0, 1.5, 2.5, 3.0])
    data = tmp_path / "data"

    def cli(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "run_pipeline.py", *argv, "--data-dir", str(data)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )

    assert cli("ingest", str(folder), "--reid", "hsv", "-q").returncode == 0
    crop = tmp_path / "walker.jpg"
    cv2.imwrite(str(crop), read_frame(vtest_path, 45)[170:270, 560:600])
    out = tmp_path / "hits.json"
    r = cli("query", str(crop), "--by", "detection", "--k", "5", "--json", str(out))
    assert r.returncode == 0, r.stderr
    assert "2026-11-25 15:44:3" in r.stdout  # the table shows the time of day
    hits = json.loads(out.read_text())["hits"]
    for h in hits:
        expected = datetime(2026, 11, 25, 15, 44, 33) + timedelta(seconds=h["timestamp_s"])
        assert h["wall_time"] == expected.isoformat(timespec="milliseconds")
    assert {h["timestamp_s"] for h in hits} <= {0.0, 0.5, 1.0, 1.5, 2.5, 3.0}
    # --start-time given by the user replaces what the file names said
    again = cli(
        "ingest", str(folder), "--reid", "hsv", "-q", "--start-time", "2026-01-02T03:04:05+01:00"
    )
    assert again.returncode == 0 and "already ingested" in again.stdout
    r = cli("query", str(crop), "--by", "detection", "--k", "1", "--json", "-")
    hit = json.loads(r.stdout)["hits"][0]
    start = datetime.fromisoformat("2026-01-02T03:04:05+01:00")
    assert hit["wall_time"] == (start + timedelta(seconds=hit["timestamp_s"])).isoformat(
        timespec="milliseconds"
    )
