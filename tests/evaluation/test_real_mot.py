"""Real labelled sequences in the layout the MOT Challenge publishes them: MOT15's ten-column
ground truth, frames from the sequence's video decoded in order, and the crowded mosaic made
from them with the ground truth moved exactly."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import write_video

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def _mot15_sequence(root: Path, frames: int = 30) -> Path:
    """A MOT15-style sequence: video.avi (frame i has a white column at x = i) and a gt with
    two tracks, one of them marked ignored (flag 0) on its first frames."""
    seq = root / "SEQ-A"
    (seq / "gt").mkdir(parents=True)
    write_video(seq / "video.avi", frames=frames, size_wh=(96, 64))
    rows = []
    for n in range(1, frames + 1):
        rows.append(f"{n},1,{n},{5},{10},{20},1,-1,-1,-1")
        rows.append(f"{n},2,{50},{30},{12},{24},{0 if n <= 3 else 1},-1,-1,-1")
    (seq / "gt" / "gt.txt").write_text("\n".join(rows) + "\n")
    (seq / "seqinfo.ini").write_text(
        f"[Sequence]\nname=SEQ-A\nimDir=img1\nframeRate=10\nseqLength={frames}\n"
        "imWidth=96\nimHeight=64\nimExt=.jpg\n"
    )
    return seq


def _pets_sequence(root: Path) -> Path:
    """PETS09-S2L1 in the MOT layout: its ground truth and the sample video as its frames."""
    seq = root / "PETS09-S2L1"
    seq.mkdir()
    source = SHARED / "real-mot" / "PETS09-S2L1"
    os.symlink(source / "gt", seq / "gt")
    os.symlink(source / "seqinfo.ini", seq / "seqinfo.ini")
    os.symlink(SHARED / "vtest.avi", seq / "video.avi")
    return seq


def test_mot15_ground_truth_over_a_video(tmp_path: Path) -> None:
    from evaluation.datasets import frame_image, frame_images, load_mot

    _mot15_sequence(tmp_path)
    ds = load_mot(tmp_path)
    assert len(ds.frames) == 30 and ds.frames[0].name == "SEQ-A/000001"
    first = ds.frames[0]
    assert first.boxes.tolist() == [[1, 5, 11, 25], [50, 30, 62, 54]]  # x, y, w, h -> xyxy
    assert first.pids[0] >= 0 and first.pids[1] == -2  # flag 0: a person, never a query
    assert ds.frames[5].pids[1] >= 0
    assert {q.pid for q in ds.queries} == {0, 1}
    for i, image in frame_images(ds):  # frame N of the gt is the N-th decoded frame
        column = int(np.argmax(image[:, :, 0].mean(axis=0)))
        assert column == i, (i, column)
    assert int(np.argmax(frame_image(ds.frames[17])[:, :, 0].mean(axis=0))) == 17


def test_mosaic_of_a_labelled_sequence_moves_its_ground_truth_exactly(tmp_path: Path) -> None:
    from evaluation.crowd import write_crowd_from_mot
    from evaluation.datasets import load_mot

    seq = _mot15_sequence(tmp_path / "src", frames=30)
    r = write_crowd_from_mot(seq, tmp_path / "out", grid=2, frames=5, stride=2)
    assert r.frames == 5 and r.size_wh == (192, 128)
    gt = np.loadtxt(tmp_path / "out" / "SEQ-A-mosaic2x2" / "gt" / "gt.txt", delimiter=",")
    offset = (30 - 1 - 4 * 2) // 3  # the tiles' time shift, as the writer spreads them
    for t in range(5):
        rows = gt[gt[:, 0] == t + 1]
        for j in range(4):
            src = t * 2 + j * offset + 1  # the source frame (1-based) in tile j
            x0, y0 = (j % 2) * 96, (j // 2) * 64
            one = rows[(rows[:, 1] == 1) & (np.abs(rows[:, 3] - (5 + y0)) < 0.01)]
            one = one[np.abs(one[:, 2] - (src + x0)) < 0.01]
            assert len(one) == 1, (t, j)  # track 1 at x = its source frame number, shifted
            two = rows[(rows[:, 1] == 2) & (rows[:, 2] == 50 + x0) & (rows[:, 3] == 30 + y0)]
            assert len(two) == 1 and two[0, 6] == (0 if src <= 3 else 1)  # ignored stays so
    back = load_mot(tmp_path / "out")  # readable as a MOT sequence, ids kept as identities
    assert len(back.frames) == 5 and len(back.queries) == 2


@pytest.mark.skipif(not (SHARED / "real-mot").is_dir(), reason="../shared/data/real-mot absent")
def test_the_sample_videos_own_ground_truth(tmp_path: Path) -> None:
    """PETS09-S2L1 is vtest.avi: its MOT15 ground truth reads with the published counts
    (795 frames, 19 ids, 4,476 rows to evaluate), over the video's own frames."""
    from evaluation.datasets import load_mot

    seq = _pets_sequence(tmp_path)
    ds = load_mot(seq)
    assert len(ds.frames) == 795
    assert sum(int((f.pids >= 0).sum()) for f in ds.frames) == 4476
    assert sum(len(f.boxes) for f in ds.frames) == 4650
    assert len({int(p) for f in ds.frames for p in f.pids if p >= 0}) == 19


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED / "real-mot").is_dir(), reason="../shared/data/real-mot absent")
def test_real_people_as_a_reid_set_scored_as_a_query_ranks(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """The sample video's labelled people as a re-ID set: re-entries joined by --merge, queries
    from early in each person's time on screen, gallery from late in it, full-size crops;
    eval-reid scores it with an interval, plain and with expansion + re-ranking."""
    import json

    import cv2

    import run_pipeline
    from evaluation.reid_datasets import load_reid_dataset

    seq = _pets_sequence(tmp_path)
    out = tmp_path / "reid"
    merges = ["--merge", "PETS09-S2L1:11=3", "--merge", "PETS09-S2L1:12=4"]
    argv = ["export-reid-set", "--from-mot", str(seq), *merges, "--out", str(out)]
    assert run_pipeline.main([*argv, "--min-sightings", "12"]) == 0
    assert "wrote 17 identities" in capsys.readouterr().out  # 19 ids, two re-entries joined
    ds = load_reid_dataset(out, "market1501")
    frame = {p: int(p.stem.split("_")[2]) for s in ds.query + ds.gallery for p in s.paths}
    for pid in {s.pid for s in ds.query}:
        asked = [frame[s.paths[0]] for s in ds.query if s.pid == pid]
        found = [frame[s.paths[0]] for s in ds.gallery if s.pid == pid]
        assert 1 <= len(asked) <= 4 and 1 <= len(found) <= 8
        assert max(asked) < min(found)  # the gallery is later than every query
    merged = [s for s in ds.query + ds.gallery if s.pid == 3]  # id 3 and its re-entry as 11
    spans = sorted(frame[s.paths[0]] for s in merged)
    assert spans[-1] - spans[0] > 300  # frames from both of that person's visits
    crop = cv2.imread(str(ds.gallery[0].paths[0]))
    assert crop is not None and crop.shape[0] >= 48  # full-resolution crops, not thumbnails
    results = []
    for extra in ([], ["--qe", "3", "--rerank"]):
        code = run_pipeline.main(
            [
                "eval-reid",
                str(out),
                "--format",
                "market1501",
                "--reid",
                "hsv",
                *extra,
                "--json",
                "-",
            ]
        )
        assert code == 0
        results.append(json.loads(capsys.readouterr().out))
    for r in results:
        lo, hi = r["mAP_ci95"]
        assert 0 <= lo <= r["mAP"] <= hi <= 1 and r["queries"] == len(ds.query)
    assert results[1]["rerank"] and results[1]["query_expansion"] == 3
    assert results[0]["mAP"] != results[1]["mAP"]  # the ranking was really changed


@pytest.mark.skipif(not (SHARED / "real-mot").is_dir(), reason="../shared/data/real-mot absent")
def test_real_people_as_a_training_split_one_camera_per_sequence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--split train`: labelled people of two sequences as bounding_box_train, each sequence
    a camera (what --camstyle learns styles of), read back by the training loader."""
    import run_pipeline
    from reid.train_data import layout_training_set

    seqs = []
    for name in ("TUD-Campus", "TUD-Stadtmitte"):
        seq = tmp_path / name
        seq.mkdir()
        for part in ("gt", "seqinfo.ini", "video.mp4"):
            os.symlink(SHARED / "real-mot" / name / part, seq / part)
        seqs += ["--from-mot", str(seq)]
    out = tmp_path / "train"
    argv = ["export-reid-set", "--split", "train", *seqs, "--per-track", "5", "--out", str(out)]
    assert run_pipeline.main([*argv, "--min-sightings", "12"]) == 0
    assert "from 2 camera(s)" in capsys.readouterr().out
    assert not (out / "query").exists()  # a training split only
    samples = layout_training_set(out, "market1501")
    by_camera: dict[int, set[int]] = {}
    for s in samples:
        by_camera.setdefault(s.camid, set()).add(s.pid)
    assert sorted(by_camera) == [0, 1]  # c1 = TUD-Campus, c2 = TUD-Stadtmitte
    assert not by_camera[0] & by_camera[1]  # a person belongs to one sequence
    per_person = [sum(1 for s in samples if s.pid == p) for p in by_camera[0] | by_camera[1]]
    assert max(per_person) == 5 and min(per_person) >= 2
    frames = sorted(int(p.name.split("_")[2]) for p in (out / "bounding_box_train").iterdir())
    assert frames[-1] - frames[0] > 20  # spread over the people's lives, not their first frames
