"""An investigation across cameras: one time axis (date-times and times of day), answers per
camera, "other cameras only", and the journey in time order. Two cameras made the demo's way:
the sample video and a mirrored, recoloured copy recorded 30 s later (pipeline/demo.py)."""

from __future__ import annotations

import itertools
import json
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import run_pipeline
from pipeline.core.errors import ConfigError
from pipeline.core.timeline import When, parse_when
from pipeline.demo import DEMO_START, SECOND_DELAY_S
from pipeline.query_spec import covered_days
from storage.models import DetectionRow
from tests.conftest import longest_appearance, where

START = datetime.fromisoformat(DEMO_START)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90", When(offset_s=90.0)),
        ("+1:30", When(offset_s=90.0)),
        ("12.5", When(offset_s=12.5)),
        ("15:45:20", When(clock=time(15, 45, 20))),
        ("7:05", When(clock=time(7, 5))),
        ("2026-11-25T15:45:20", When(at=datetime(2026, 11, 25, 15, 45, 20))),
        ("2026-11-25 15:45", When(at=datetime(2026, 11, 25, 15, 45))),
    ],
)
def test_the_three_ways_to_say_when(text: str, expected: When) -> None:
    assert parse_when(text) == expected


@pytest.mark.parametrize("text", ["yesterday", "25:00", "15:61", "+x", "2026-13-01T00:00"])
def test_what_is_not_a_time_says_so(text: str) -> None:
    with pytest.raises(ConfigError, match="is not a time"):
        parse_when(text)


def test_a_time_of_day_needs_footage_of_one_day() -> None:
    one = covered_days([("2026-11-25T23:00:00", 600.0), (None, 50.0)])
    assert one == {date(2026, 11, 25)}
    assert When(clock=time(23, 5)).on_day(one) == datetime(2026, 11, 25, 23, 5)
    two = covered_days([("2026-11-25T23:55:00", 600.0)])  # runs past midnight
    assert two == {date(2026, 11, 25), date(2026, 11, 26)}
    with pytest.raises(ConfigError, match="2 days"):
        When(clock=time(23, 58)).on_day(two)
    with pytest.raises(ConfigError, match="no video with a known start"):
        When(clock=time(1, 0)).on_day(set())


def _query(data_dir: Path, cfg: Any, *args: str) -> dict[str, Any]:
    out = data_dir / "answer.json"
    assert run_pipeline.main(["query", *args, "--json", str(out), *where(cfg, data_dir)]) == 0
    return json.loads(out.read_text())  # type: ignore[no-any-return]


def _walker(gallery: Any) -> tuple[int, datetime]:
    """The longest appearance on camera campus: (its middle embedded sighting, its enter)."""
    track, rows = longest_appearance(gallery, "campus")
    return rows[len(rows) // 2].id, START + timedelta(seconds=track.first_s)


def _wall(text: str) -> datetime:
    return datetime.fromisoformat(text.replace(" ", "T"))


def test_other_cameras_only_finds_the_person_30_s_later(two_cameras) -> None:  # type: ignore[no-untyped-def]
    cfg, gallery, data_dir = two_cameras
    detection, entered = _walker(gallery)
    answer = _query(data_dir, cfg, "--detection", str(detection), "--other-cameras", "--k", "5")
    assert answer["tracks"] and {t["camera_id"] for t in answer["tracks"]} == {"campus-b"}
    best = answer["tracks"][0]
    # the copy was recorded 30 s later: the same walker enters camera b 30 s after camera a
    lag = (_wall(best["enter_wall"]) - entered).total_seconds()
    assert abs(lag - SECOND_DELAY_S) <= 1.5, lag


def test_per_camera_gives_the_best_of_each_camera(two_cameras) -> None:  # type: ignore[no-untyped-def]
    cfg, gallery, data_dir = two_cameras
    detection, _ = _walker(gallery)
    plain = _query(data_dir, cfg, "--detection", str(detection), "--k", "4")
    capped = _query(data_dir, cfg, "--detection", str(detection), "--k", "10", "--per-camera", "2")
    cams = [t["camera_id"] for t in capped["tracks"]]
    assert sorted(cams) == ["campus", "campus", "campus-b", "campus-b"]
    # the cap keeps each camera's own order: its best is the plain search's best of that camera
    for cam in ("campus", "campus-b"):
        mine = [t["best_detection_id"] for t in capped["tracks"] if t["camera_id"] == cam]
        theirs = [t["best_detection_id"] for t in plain["tracks"] if t["camera_id"] == cam]
        assert mine[: len(theirs[:1])] == theirs[:1]


def test_a_window_on_the_one_time_axis(two_cameras) -> None:  # type: ignore[no-untyped-def]
    cfg, gallery, data_dir = two_cameras
    detection, _ = _walker(gallery)
    ask = ["--detection", str(detection), "--by", "detection", "--k", "40"]
    late = _query(data_dir, cfg, *ask, "--from", "15:44:33")  # camera b only: it starts 15:44:30
    assert late["hits"] and {h["camera_id"] for h in late["hits"]} == {"campus-b"}
    assert all(_wall(h["wall_time"]) >= datetime(2026, 11, 25, 15, 44, 33) for h in late["hits"])
    lo, hi = datetime(2026, 11, 25, 15, 44, 3), datetime(2026, 11, 25, 15, 44, 8)
    window = _query(data_dir, cfg, *ask, "--from", lo.isoformat(), "--to", "15:44:08")
    assert window["hits"] and {h["camera_id"] for h in window["hits"]} == {"campus"}
    assert all(lo <= _wall(h["wall_time"]) <= hi for h in window["hits"])
    # the same moment said as seconds from each video's start reaches both cameras
    offsets = _query(data_dir, cfg, *ask, "--from", "+3", "--to", "8")
    assert {h["camera_id"] for h in offsets["hits"]} == {"campus", "campus-b"}
    assert all(3 <= h["timestamp_s"] <= 8 for h in offsets["hits"])


def test_the_journey_is_in_time_order_across_cameras(two_cameras) -> None:  # type: ignore[no-untyped-def]
    cfg, gallery, data_dir = two_cameras
    detection, _ = _walker(gallery)
    report = data_dir / "journey.html"
    answer = _query(
        data_dir, cfg, "--detection", str(detection), "--per-camera", "3", "--report", str(report)
    )
    steps = answer["journey"]
    assert len(steps) == len(answer["tracks"]) == 6
    enters = [_wall(s["enter"]) for s in steps]
    assert enters == sorted(enters)
    assert [s["camera"] for s in steps] == ["campus"] * 3 + ["campus-b"] * 3
    for prev, step in itertools.pairwise(steps):
        gap = (_wall(step["enter"]) - _wall(prev["leave"])).total_seconds()
        assert step["gap_s"] == pytest.approx(gap, abs=2e-3)
    page = report.read_text()
    axis = page[
        page.index('data-kind="axis"') : page.index("</svg>", page.index('data-kind="axis"'))
    ]
    assert 'data-camera="campus"' in axis and 'data-camera="campus-b"' in axis
    assert "Journey, in time order" in page


def test_frame_shows_the_stored_boxes_with_their_ids(two_cameras, capsys) -> None:  # type: ignore[no-untyped-def]
    import cv2

    from pipeline.query_input import read_frame

    cfg, gallery, data_dir = two_cameras
    out = data_dir / "frame.jpg"
    code = run_pipeline.main(
        ["frame", "camera-b.avi", "15:44:35", "--out", str(out), *where(cfg, data_dir)]
    )
    assert code == 0
    printed = capsys.readouterr().out
    video = next(v for v in gallery.videos() if v.camera_id == "campus-b")
    frame = int(printed.split(" frame ")[1].split()[0])
    assert abs(frame - 5.0 * video.fps) <= video.fps  # 15:44:35 is 5 s into camera b
    stored = gallery.frame_detections(video.id, frame)
    listed = [int(w[1:]) for w in printed.split() if w.startswith("#") and w[1:].isdigit()]
    assert sorted(listed) == sorted(d.id for d in stored) and listed
    drawn = cv2.imread(str(out))
    raw = read_frame(Path(video.path), frame)
    assert drawn.shape == raw.shape
    for d in stored:  # each box's outline is drawn over the frame
        x1, _y1, x2, y2 = (round(v) for v in (d.x1, d.y1, d.x2, d.y2))
        edge = drawn[min(y2, raw.shape[0] - 1), x1:x2].astype(int)
        assert abs(edge - raw[min(y2, raw.shape[0] - 1), x1:x2].astype(int)).mean() > 20


def test_search_by_clothing_colour_alone(two_cameras) -> None:  # type: ignore[no-untyped-def]
    """No crop at all: 'someone in a red top'. Every answer's best sighting was stored with
    red among its upper-body colours, both cameras answer, and a colour added to a crop
    search only ever removes answers."""
    cfg, gallery, data_dir = two_cameras
    with gallery.session() as s:
        colours = dict(s.execute(select(DetectionRow.id, DetectionRow.upper_colours)).all())
    assert sum(1 for c in colours.values() if c) > 0.9 * len(colours)  # ingest names them
    red = _query(data_dir, cfg, "--upper", "red", "--k", "6")
    assert red["tracks"] and red["embedder"] == "clothing colour"
    assert all("red" in colours[t["best_detection_id"]].split(",") for t in red["tracks"])
    assert {t["camera_id"] for t in red["tracks"]} == {"campus", "campus-b"}
    shares = [t["similarity"] for t in red["tracks"]]
    assert shares == sorted(shares, reverse=True) and 0 < shares[-1] <= shares[0] <= 1
    detection, _ = _walker(gallery)
    # by cosine alone (expansion and re-ranking would expand within the filtered set)
    ask = ["--detection", str(detection), "--by", "detection", "--expand", "0", "--no-rerank"]
    plain = _query(data_dir, cfg, *ask, "--k", "50")
    both = _query(data_dir, cfg, *ask, "--k", "50", "--upper", "red")
    kept = [h["detection_id"] for h in plain["hits"] if "red" in (colours[h["detection_id"]] or "")]
    assert [h["detection_id"] for h in both["hits"]][: len(kept)] == kept[: len(both["hits"])]
    assert all("red" in colours[h["detection_id"]].split(",") for h in both["hits"])
