"""`prowl eval` and `prowl bench` end to end on a synthetic dataset."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import pytest

import run_pipeline
from evaluation.synthetic import write_synthetic


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("syn-prw")
    write_synthetic(root, "prw", identities=8, cameras=3, frames_per_camera=12, seed=11)
    return root


@pytest.mark.slow
def test_bench_matrix_tables_and_plots(dataset: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "bench"
    code = run_pipeline.main(
        [
            "bench",
            str(dataset),
            "--format",
            "prw",
            "--detectors",
            "gt,gt-jitter:0.3,yolov8n",
            "--reids",
            "hsv,mobilenetv2-imagenet",
            "--out",
            str(out),
            "--data-dir",
            str(tmp_path / "data"),
        ]
    )
    assert code == 0
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [(r["detector"], r["reid"]) for r in rows] == [
        (d, e) for d in ("gt", "gt-jitter:0.3", "yolov8n") for e in ("hsv", "mobilenetv2-imagenet")
    ]
    by = {
        (r["detector"], r["reid"]): {
            k: float(v) for k, v in r.items() if k not in ("detector", "reid", "mAP_ci95")
        }
        for r in rows
    }
    for r in rows:  # the bootstrap interval over queries holds the mAP
        lo, hi = (float(x) for x in r["mAP_ci95"].strip("[]").split(","))
        assert lo <= float(r["mAP"]) <= hi
    # By hand: ground-truth boxes, every one scored 1 -> recall 1 and AP 1 at any IoU.
    for reid in ("hsv", "mobilenetv2-imagenet"):
        gt = by[("gt", reid)]
        assert gt["det_recall@0.5"] == gt["det_ap@0.5"] == gt["det_recall@0.7"] == 1.0
        jit = by[("gt-jitter:0.3", reid)]
        assert jit["det_recall@0.7"] < jit["det_recall@0.5"] < 1.0  # worse boxes, fewer matches
        assert jit["mAP"] < gt["mAP"]  # box quality alone lowers search mAP
    # identities are their clothes' colours: the colour baseline finds them from true boxes
    assert by[("gt", "hsv")]["mAP"] > 0.8 and by[("gt", "hsv")]["top1"] == 1.0
    md = (out / "results.md").read_text()
    assert md.count("\n| ") == 7 and "| detector | reid |" in md
    for png in ("map_vs_recall.png", "threshold_sweep.png"):
        img = cv2.imread(str(out / png))
        assert img is not None and img.shape[0] > 300 and img.shape[1] > 500


def test_eval_json_cache_and_errors(dataset: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "data"
    argv = [
        "eval",
        str(dataset),
        "--format",
        "prw",
        "--detector",
        "gt-jitter:0.2",
        "--reid",
        "hsv",
        "--data-dir",
        str(data),
        "--protocol",
        "cross-camera",
        "--iou",
        "0.5",
        "--cws",
        "--json",
        "-",
    ]
    assert run_pipeline.main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["protocol"] == "cross-camera" and first["iou"] == 0.5 and first["cws"] is True
    caches = sorted((data / "eval-cache").glob("*.npz"))
    assert [p.name.split("-")[0] for p in caches] == ["det", "emb"]
    stamps = [p.stat().st_mtime_ns for p in caches]
    assert run_pipeline.main(argv) == 0  # re-scoring reads the cache
    assert json.loads(capsys.readouterr().out) == first
    assert [p.stat().st_mtime_ns for p in caches] == stamps
    for bad, needle in [
        (["--detector", "nope"], "unknown detector"),
        (["--reid", "nope"], "unknown re-ID"),
        (["--det-thresh", "2"], "within 0..1"),
    ]:
        code = run_pipeline.main([*argv[:-2], *bad])
        err = capsys.readouterr().err
        assert code == 2 and needle in err and err.count("\n") == 1
    code = run_pipeline.main(["eval", str(tmp_path / "nowhere"), "--format", "mot"])
    assert code == 2 and "no such dataset" in capsys.readouterr().err


def test_eval_tracks_on_mot_layout(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "mot"
    write_synthetic(root, "mot", identities=10, cameras=2, frames_per_camera=24, seed=5)
    base = [
        "eval",
        str(root),
        "--format",
        "mot",
        "--reid",
        "hsv",
        "--tracks",
        "--json",
        "-",
        "--data-dir",
        str(tmp_path / "data"),
    ]
    position_only = tmp_path / "position.yaml"
    position_only.write_text("tracking:\n  appearance_weight: 0\n")
    for config in ([], ["--config", str(position_only)]):
        assert run_pipeline.main([*base, *config, "--detector", "gt"]) == 0
        gt = json.loads(capsys.readouterr().out)
        assert run_pipeline.main([*base, *config, "--detector", "gt-jitter:0.3"]) == 0
        jit = json.loads(capsys.readouterr().out)
        # true boxes of people walking at video pace: the tracker follows nearly everyone
        assert gt["MOTA"] > 0.9 and gt["IDF1"] > 0.75 and gt["ID_switches"] <= 5
        assert jit["MOTA"] < gt["MOTA"]  # worse boxes, worse tracks
        # Good tracks pool into features that still find people (hsv, a weak embedder, on
        # these figures: about 0.86 pooled by position-only tracks, 0.83 with appearance;
        # what pooling computes is checked by hand in test_pooled_features_by_hand); tracks
        # built on jittered boxes mix people, and their pooled features show it.
        assert gt["mAP_pooled"] > 0.75 and gt["mAP_pooled_cadence"] > 0.75
        assert jit["mAP_pooled"] < gt["mAP_pooled"] - 0.3
        for r in (gt, jit):
            if config:  # position only: the cadence skips crops
                assert 0 < r["embedded_fraction_cadence"] < 1
            else:  # the tracker compares the look of every box of every 2nd frame
                assert 0.35 < r["embedded_fraction_cadence"] < 0.65
            # stitching and folding only join (never more tracks); identities: 10 per camera
            assert r["tracks_folded"] <= r["tracks_stitched"] <= r["tracks"]
            assert r["identities"] == 20 and r["stray_only_identities_folded"] == 0
            assert 0 <= r["HOTA"] <= 1 and r["tracks_per_identity"] >= 1.0


@pytest.mark.slow
def test_bench_detector_settings_are_axes(dataset: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """`NAME@OPT` rows: the setting is applied (input size column), detection speed is
    measured per row and plotted against mAP; an unknown option is one line, exit 2."""
    out = tmp_path / "bench"
    base = ["bench", str(dataset), "--format", "prw", "--reids", "hsv", "--out", str(out)]
    base += ["--data-dir", str(tmp_path / "data")]
    assert run_pipeline.main([*base, "--detectors", "yolov8n@320,yolov8n@fixed+onnxruntime"]) == 0
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [r["detector"] for r in rows] == ["yolov8n@320", "yolov8n@fixed+onnxruntime"]
    assert [int(r["input_px"]) for r in rows] == [320, 640]
    assert all(float(r["detect_fps"]) > 0 for r in rows)
    img = cv2.imread(str(out / "map_vs_speed.png"))
    assert img is not None and img.shape[1] > 500
    capsys.readouterr()

    assert run_pipeline.main([*base, "--detectors", "yolov8n@fast"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown detector option 'fast'" in err[0]
    assert run_pipeline.main([*base, "--detectors", "yolov8n@100"]) == 2
    assert "detector.imgsz_px" in capsys.readouterr().err


@pytest.mark.slow
def test_bench_over_several_datasets_writes_one_summary(tmp_path: Path) -> None:
    roots = []
    for seed in (1, 2):
        root = tmp_path / f"set{seed}"
        write_synthetic(root, "prw", identities=5, cameras=2, frames_per_camera=8, seed=seed)
        roots.append(root)
    out = tmp_path / "bench"
    argv = ["bench", *map(str, roots), "--format", "prw", "--detectors", "gt,gt-jitter:0.3"]
    argv += ["--reids", "hsv", "--out", str(out), "--data-dir", str(tmp_path / "d")]
    assert run_pipeline.main(argv) == 0
    assert (out / "set1" / "results.csv").is_file() and (
        out / "set2" / "map_vs_recall.png"
    ).is_file()
    text = (out / "summary.md").read_text().splitlines()
    lines = [line for line in text if line.startswith("| set")]
    assert [line.split(" | ")[0:2] for line in lines] == [
        ["| set1", "gt × hsv"],
        ["| set1", "gt-jitter:0.3 × hsv"],
        ["| set2", "gt × hsv"],
        ["| set2", "gt-jitter:0.3 × hsv"],
    ]
    ratios = [line.rstrip(" |").rsplit("|", 1)[-1].strip() for line in lines]
    assert ratios[0] == ratios[2] == "1.00×"  # each dataset's first detector is its baseline
    assert all(r.endswith("×") for r in ratios)


def test_pooled_features_by_hand() -> None:
    """Each tracked box gets its track's pooled look: the mean of the members marked in
    ``use``, unit length; untracked boxes keep their own feature."""
    import numpy as np

    from evaluation.tracking_eval import pooled_features

    f0 = np.asarray([[1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32)  # frame 0: tracks 7, 8, none
    f1 = np.asarray([[0, 1, 0], [1, 0, 0]], np.float32)  # frame 1: tracks 7 and 8
    ids = [np.asarray([7, 8, -1]), np.asarray([7, 8])]
    use = [np.asarray([True, True, True]), np.asarray([True, False])]  # 8's 2nd box not embedded
    out = pooled_features([f0, f1], ids, use)
    h = 1 / np.sqrt(2)
    np.testing.assert_allclose(out[0], [[h, h, 0], [0, 1, 0], [0, 0, 1]], atol=1e-6)
    np.testing.assert_allclose(out[1], [[h, h, 0], [0, 1, 0]], atol=1e-6)
