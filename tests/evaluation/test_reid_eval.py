"""Re-ID benchmarks: the readers on synthetic sets in the real layouts, the runner's
plumbing with images whose answer is known, and the CLI."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest

import run_pipeline
from evaluation.reid_datasets import ReidDataset, ReidSample, load_reid_dataset
from evaluation.reid_runner import evaluate_reid
from evaluation.reid_synthetic import write_reid_synthetic
from evaluation.synthetic import write_synthetic
from pipeline.core.errors import DatasetError


@pytest.mark.parametrize("fmt", ["market1501", "msmt17", "mars"])
def test_readers_take_the_synthetic_layouts(tmp_path: Path, fmt: str) -> None:
    nq, ng = write_reid_synthetic(tmp_path / fmt, fmt, identities=6, cameras=3, per_camera=2)
    ds = load_reid_dataset(tmp_path / fmt, fmt)
    assert (len(ds.query), len(ds.gallery)) == (nq, ng)
    assert len({s.pid for s in ds.query}) == len(ds.query) == 6  # one query per identity
    assert all(p.is_file() for s in ds.query + ds.gallery for p in s.paths)
    assert all(s.pid != -1 for s in ds.gallery)  # junk images are ignored
    # every identity is also in the gallery, seen by another camera than its query
    for q in ds.query:
        assert any(g.pid == q.pid and g.camid != q.camid for g in ds.gallery)
    assert ds.tracklets == (fmt == "mars")


def test_prw_boxes_as_a_reid_set(tmp_path: Path) -> None:
    truth = write_synthetic(tmp_path / "prw", "prw", identities=5, cameras=3, frames_per_camera=8)
    ds = load_reid_dataset(tmp_path / "prw", "prw")
    assert len(ds.query) == truth.queries and len(ds.gallery) == truth.labeled_boxes
    assert all(s.box is not None for s in ds.query)


class _MeanColour:
    """A stand-in embedder for testing the runner: the feature is the crop's mean colour."""

    name, dim, weights = "mean-colour", 3, None

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        v = np.stack([c.reshape(-1, 3).mean(axis=0) for c in crops]).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)


def _solid(path: Path, bgr: tuple[int, int, int]) -> Path:
    cv2.imwrite(str(path), np.full((16, 8, 3), bgr, np.uint8))
    return path


def test_runner_pools_tracklets_and_scores_with_the_protocol(tmp_path: Path) -> None:
    red, green, blue = (0, 0, 250), (0, 250, 0), (250, 0, 0)
    q = (ReidSample((_solid(tmp_path / "q1.png", red),), 1, 0),)
    # pid 1's true match is a tracklet whose mean is reddish; a same-camera copy of the query
    # (removed by the protocol) and a pure-green pid 2 sit in between.
    g = (
        ReidSample((_solid(tmp_path / "same-cam.png", red),), 1, 0),
        ReidSample((_solid(tmp_path / "g2.png", green),), 2, 1),
        ReidSample(
            (_solid(tmp_path / "t1.png", red), _solid(tmp_path / "t2.png", (0, 120, 250))), 1, 1
        ),
        ReidSample((_solid(tmp_path / "g3.png", blue),), 3, 2),
    )
    r = evaluate_reid(ReidDataset("tiny", tmp_path, q, g), _MeanColour(), batch_crops=2)  # type: ignore[arg-type]
    assert r["valid_queries"] == 1 and r["tracklets"]
    assert r["rank1"] == 1.0 and r["mAP"] == 1.0  # the tracklet beats green and blue


def test_cli_eval_reid_and_its_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_reid_synthetic(tmp_path / "m", "market1501", identities=8, cameras=3)
    code = run_pipeline.main(
        ["eval-reid", str(tmp_path / "m"), "--format", "market1501", "--reid", "hsv", "--json", "-"]
    )
    r = json.loads(capsys.readouterr().out)
    assert code == 0 and r["dataset"] == "Market-1501" and r["reid"] == "hsv"
    assert r["valid_queries"] == 8 and r["queries"] == 8
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="expects query/ and bounding_box_test/"):
        load_reid_dataset(tmp_path / "empty", "market1501")
    with pytest.raises(DatasetError, match=r"list_query\.txt"):
        load_reid_dataset(tmp_path / "empty", "msmt17")
    code = run_pipeline.main(["eval-reid", str(tmp_path / "empty"), "--format", "mars"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "bbox_test" in err
