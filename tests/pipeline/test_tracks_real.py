"""Tracking on vtest.avi and track-level retrieval."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from sqlalchemy import func, select

import run_pipeline
from pipeline.context import Models, RunContext
from pipeline.core.boxes import iou_matrix
from pipeline.ingest import ingest_video
from pipeline.query import run_query
from pipeline.query_input import read_frame
from storage.gallery import Gallery
from storage.models import DetectionRow, TrackRow
from tests.conftest import where

pytestmark = pytest.mark.slow

# Walkers followed by eye through frames 0-100 (crops of each track looked at once: one
# person throughout). Box at frame 55, and the span a human sees them walk in that window.
WALKERS_AT_55 = {
    "red and navy jacket, papers": ((484, 210, 522, 299), 11, 85),
    "blonde, long black coat": ((529, 208, 560, 296), 17, 80),
    "bald, black jacket, jeans": ((640, 248, 680, 361), 40, 58),
}


def _track_at(gallery: Gallery, frame: int, box: tuple[int, ...]) -> TrackRow:
    with gallery.session() as s:
        rows = list(s.scalars(select(DetectionRow).where(DetectionRow.frame_index == frame)))
        ious = iou_matrix(np.array([[r.x1, r.y1, r.x2, r.y2] for r in rows]), np.array([box]))[:, 0]
        det = rows[int(np.argmax(ious))]
        assert ious.max() > 0.7 and det.track_id is not None
        track = s.get(TrackRow, det.track_id)
    assert track is not None
    return track


@pytest.mark.parametrize("walker", list(WALKERS_AT_55))
def test_walkers_a_human_follows_are_one_long_track(vtest_gallery, walker: str) -> None:  # type: ignore[no-untyped-def]
    _cfg, gallery, _s, _ = vtest_gallery
    box, enters, sightings = WALKERS_AT_55[walker]
    track = _track_at(gallery, 55, box)
    assert track.first_frame <= enters + 5 and track.last_frame == 100
    assert track.detections >= sightings - 5


def test_tracks_table_agrees_with_detections(vtest_gallery) -> None:  # type: ignore[no-untyped-def]
    _cfg, gallery, summary, _ = vtest_gallery
    with gallery.session() as s:
        tracked = s.scalar(
            select(func.count(DetectionRow.id)).where(DetectionRow.track_id.is_not(None))
        )
        tracks = list(s.scalars(select(TrackRow)))
    assert summary.tracks == len(tracks) and 5 <= len(tracks) <= 25
    assert sum(t.detections for t in tracks) == tracked and tracked >= 0.8 * summary.detections
    for t in tracks:
        assert t.first_s <= t.last_s and t.first_frame <= t.last_frame
        assert t.pooled is not None
        assert abs(float(np.linalg.norm(np.frombuffer(t.pooled, np.float32))) - 1) < 1e-4


def test_cadence_embeds_fewer_crops_and_still_finds_the_walker(
    cfg_default, yolo, default_embedder, vtest_path, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    cfg = replace(
        cfg_default,
        data_dir=tmp_path,
        video=replace(cfg_default.video, end_s=10.05),
        tracking=replace(cfg_default.tracking, appearance_weight=0.0),  # position only
    )
    gallery = Gallery(cfg.db_url, tmp_path)
    summary = ingest_video(
        RunContext(cfg, gallery, Models(yolo, default_embedder)), vtest_path, camera_id="campus"
    )
    assert summary.embedded < 0.4 * summary.detections  # every 10th frame per track, not all
    with gallery.session() as s:
        assert all(t.embedded >= 1 for t in s.scalars(select(TrackRow)))
    box, _enters, _n = WALKERS_AT_55["bald, black jacket, jeans"]
    walker = _track_at(gallery, 55, box)
    image = read_frame(vtest_path, 90)
    with gallery.session() as s:
        at90 = s.scalars(
            select(DetectionRow).where(
                DetectionRow.track_id == walker.id, DetectionRow.frame_index == 90
            )
        ).one()
    crop = image[round(at90.y1) : round(at90.y2), round(at90.x1) : round(at90.x2)]
    result = run_query(gallery, [crop], k=3, by="track")
    assert result.tracks[0].track_id == walker.id
    assert result.tracks[0].sightings == walker.detections
    assert len({t.track_id for t in result.tracks}) == 3
    gallery.close()


def test_appearances_keep_the_trackers_ids_and_hide_lone_boxes(vtest_gallery) -> None:  # type: ignore[no-untyped-def]
    """Every stored box keeps the tracker's own id beside its appearance; a --by track answer
    lists appearances only (no single box that fits no one) unless strays are asked for."""
    cfg, gallery, summary, _ = vtest_gallery
    assert cfg.tracking.appearance_weight > 0
    with gallery.session() as s:
        rows = s.execute(
            select(
                DetectionRow.id,
                DetectionRow.track_id,
                DetectionRow.raw_track_id,
                DetectionRow.embedding.is_not(None),
            )
        ).all()
        sizes = dict(s.execute(select(TrackRow.id, TrackRow.detections)).all())
        embedded = s.execute(
            select(DetectionRow.frame_index, DetectionRow.embedding.is_not(None))
        ).all()
    assert summary.embedded == sum(has for _f, has in embedded) == summary.detections
    assert rows and all(raw is not None for _i, _t, raw, _v in rows)
    # an appearance is made of whole tracker tracks: no tracker track is split between two
    appearance_of: dict[int, set[int]] = {}
    for _i, tid, raw, _v in rows:
        if raw:
            appearance_of.setdefault(raw, set()).add(tid)
    assert all(len(a) == 1 and None not in a for a in appearance_of.values())
    # (a box without a vector cannot be found by a search at all)
    lone = [i for i, tid, _raw, vec in rows if vec and (tid is None or sizes[tid] == 1)]
    image = read_frame(where_video(gallery), 55)
    box, _e, _n = WALKERS_AT_55["red and navy jacket, papers"]
    crop = image[box[1] : box[3], box[0] : box[2]]
    answer = run_query(gallery, [crop], k=20, by="track")
    assert answer.tracks and all(t.sightings > 1 for t in answer.tracks)
    with_strays = run_query(gallery, [crop], k=200, by="track", strays=True)
    singles = [t for t in with_strays.tracks if t.sightings == 1]
    assert len(singles) == len(lone)  # every searchable lone box is there when asked, once
    if singles:
        assert any("--strays" in n for n in run_query(gallery, [crop], k=200, by="track").notes)


def test_the_default_compares_every_second_frame(
    cfg_default, yolo, default_embedder, vtest_path, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """With the default settings every box of every 2nd frame gets a vector (the tracker
    compared them by look), and no other box does."""
    every = cfg_default.tracking.appearance_every_frames
    assert cfg_default.tracking.appearance_weight > 0 and every == 2
    cfg = replace(cfg_default, data_dir=tmp_path, video=replace(cfg_default.video, end_s=3.05))
    with Gallery(cfg.db_url, tmp_path) as gallery:
        summary = ingest_video(
            RunContext(cfg, gallery, Models(yolo, default_embedder)), vtest_path, camera_id="c"
        )
        with gallery.session() as s:
            rows = s.execute(
                select(DetectionRow.frame_index, DetectionRow.embedding.is_not(None))
            ).all()
    assert rows and all(has == (frame % every == 0) for frame, has in rows)
    assert summary.embedded == sum(has for _f, has in rows) > 0.4 * summary.detections


def where_video(gallery: Gallery) -> str:
    return gallery.videos()[0].path


def test_cli_query_by_track_tracks_and_export(vtest_gallery, vtest_path, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    cfg, gallery, _s, data_dir = vtest_gallery
    box, _e, _n = WALKERS_AT_55["blonde, long black coat"]
    walker = _track_at(gallery, 55, box)
    d = where(cfg, data_dir)
    report, js = tmp_path / "t.html", tmp_path / "t.json"
    code = run_pipeline.main(
        [
            "query",
            "--frame",
            f"{vtest_path}:55",
            "--box",
            ",".join(map(str, box)),
            "--k",
            "4",
            "--report",
            str(report),
            "--json",
            str(js),
            *d,
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and out.splitlines()[0].split()[:6] == [
        "rank",
        "similarity",
        "camera",
        "video",
        "enter",
        "leave",
    ]
    tracks = json.loads(js.read_text())["tracks"]
    assert len(tracks) == 4 and tracks[0]["track_id"] == walker.id
    assert tracks[0]["sightings"] == walker.detections and tracks[0]["enter"] <= tracks[0]["leave"]
    page = report.read_text()
    assert page.count('class="hit"') == 4 and "<svg" in page and "one time axis" in page

    assert run_pipeline.main(["tracks", "vtest.avi", "--min-sightings", "20", *d]) == 0
    listing = capsys.readouterr().out
    assert str(walker.id) in listing
    # The same video named by another path to it (a copy, a mount): found by its file name
    elsewhere = tmp_path / "copy" / "vtest.avi"
    assert run_pipeline.main(["tracks", str(elsewhere), "--min-sightings", "20", *d]) == 0
    assert capsys.readouterr().out == listing
    assert (
        run_pipeline.main(["export-tracks", "--format", "mot", "--out", str(tmp_path / "mot"), *d])
        == 0
    )
    capsys.readouterr()
    lines = (tmp_path / "mot" / "vtest.txt").read_text().splitlines()
    mine = [ln.split(",") for ln in lines if ln.split(",")[1] == str(walker.id)]
    assert len(mine) == walker.detections
    assert int(mine[0][0]) == walker.first_frame + 1  # MOT frames count from 1
    assert all(float(p[4]) > 0 and float(p[5]) > 0 for p in mine)


def test_export_reid_set_from_the_gallerys_tracks(vtest_gallery, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """Long tracks become identities: a query from early in the track, gallery images from
    late in it (a time gap the protocol scores across), readable by eval-reid."""
    from evaluation.reid_datasets import load_reid_dataset

    cfg, _gallery, _s, data_dir = vtest_gallery
    out = tmp_path / "reid-set"
    d = where(cfg, data_dir)
    assert (
        run_pipeline.main(["export-reid-set", "--out", str(out), "--min-sightings", "30", *d]) == 0
    )
    assert "Market-1501 layout" in capsys.readouterr().out
    ds = load_reid_dataset(out, "market1501")
    assert len(ds.query) >= 4 and len(ds.gallery) >= 4 * len(ds.query)
    frame = {p: int(p.stem.split("_")[2]) for s in ds.query + ds.gallery for p in s.paths}
    for q in ds.query:
        later = [g for g in ds.gallery if g.pid == q.pid]
        assert later and all(frame[g.paths[0]] > frame[q.paths[0]] for g in later)
    assert (
        run_pipeline.main(["eval-reid", str(out), "--format", "market1501", "--reid", "hsv"]) == 0
    )
    assert "mAP" in capsys.readouterr().out
    code = run_pipeline.main(["export-reid-set", "--out", str(out), *d])  # not empty now
    assert code == 2
