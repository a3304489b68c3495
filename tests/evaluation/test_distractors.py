"""Distractor galleries: the curve's first point is the plain evaluation, people who look
like the queries push their true matches down, and the CLI prints and plots the curve."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import run_pipeline
from evaluation.distractors import curve
from pipeline.core.vectors import l2_normalise
from reid.metrics import reid_metrics


def _set(seed: int = 0) -> tuple[np.ndarray, list[int], np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    centres = l2_normalise(rng.normal(size=(6, 64)))
    q = l2_normalise(centres + 0.12 * rng.normal(size=centres.shape))
    g = l2_normalise(np.repeat(centres, 3, axis=0) + 0.12 * rng.normal(size=(18, 64)))
    return q, list(range(1, 7)), g, [p for p in range(1, 7) for _ in range(3)]


def test_no_distractors_is_the_plain_evaluation_and_lookalikes_cost_rank() -> None:
    q, qp, g, gp = _set()
    plain = reid_metrics(1 - q @ g.T, qp, gp, [1] * 6, [2] * 18)
    far = l2_normalise(np.random.default_rng(5).normal(size=(50, 64)))
    lookalikes = l2_normalise(q + 0.01 * np.random.default_rng(6).normal(size=q.shape))
    distractors = np.concatenate([far, lookalikes]).astype(np.float32)
    points = curve(q, qp, [1] * 6, g, gp, [2] * 18, distractors, sizes=(0, 50, 56))
    assert [p.distractors for p in points] == [0, 50, 56]
    assert points[0].mAP == np.float64(plain.mAP) and points[0].rank1 == plain.cmc[0]
    assert points[0].gallery == 18 and points[2].gallery == 74
    # random directions do not matter here; a near copy of each query goes above its three
    # true matches (all on top before): their precisions become 1/2, 2/3, 3/4
    assert points[0].mAP == 1.0 and points[1].mAP == 1.0
    assert points[2].rank1 == 0.0
    assert abs(points[2].mAP - (1 / 2 + 2 / 3 + 3 / 4) / 3) < 1e-9
    assert all(p.search_p50_ms >= 0 for p in points)


def test_cli_curve_with_a_folder_of_crops(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    import cv2

    data = tmp_path / "market"
    assert run_pipeline.main(["make-synthetic", str(data), "--format", "market1501"]) == 0
    crops = tmp_path / "others"
    crops.mkdir()
    rng = np.random.default_rng(0)
    for i in range(30):
        cv2.imwrite(str(crops / f"{i}.png"), rng.integers(0, 255, (64, 32, 3), dtype=np.uint8))
    capsys.readouterr()
    plot = tmp_path / "curve.png"
    argv = ["eval-reid", str(data), "--format", "market1501", "--reid", "hsv"]
    code = run_pipeline.main([*argv, "--distractors", str(crops), "--plot", str(plot)])
    out = capsys.readouterr().out
    assert code == 0 and "30 crops of" in out and plot.stat().st_size > 1000
    assert run_pipeline.main([*argv, "--distractors", "300", "--json", "-"]) == 0
    sizes = [p["distractors"] for p in json.loads(capsys.readouterr().out)["distractors"]["curve"]]
    assert sizes == [0, 100, 300]
