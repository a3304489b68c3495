"""The PRW and MOT readers on datasets written in their layouts, and malformed copies."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy.io import savemat

from evaluation.datasets import UNLABELED, load_dataset
from evaluation.synthetic import write_synthetic
from pipeline.core.errors import DatasetError


@pytest.fixture(scope="module")
def prw(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("prw")
    return root, write_synthetic(root, "prw", identities=8, cameras=3, frames_per_camera=10, seed=3)


@pytest.fixture(scope="module")
def mot(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("mot")
    return root, write_synthetic(root, "mot", identities=8, cameras=2, frames_per_camera=10, seed=4)


def test_prw_reader_matches_what_was_written(prw) -> None:  # type: ignore[no-untyped-def]
    root, truth = prw
    ds = load_dataset(root, "prw")
    assert len(ds.frames) == truth.frames == 30
    pids = np.concatenate([f.pids for f in ds.frames])
    assert (pids > 0).sum() == truth.labeled_boxes and (
        pids == UNLABELED
    ).sum() == truth.unlabeled_boxes
    assert len(ds.queries) == truth.queries == 8
    assert {f.camera for f in ds.frames} == {"1", "2", "3"}
    index = ds.frame_index()
    for q in ds.queries:  # each query's box is that identity's annotated box in its frame
        frame = ds.frames[index[q.frame]]
        assert q.camera == frame.camera
        assert np.allclose(frame.boxes[frame.pids == q.pid][0], q.box, atol=0.1)
        assert sum(q.pid in f.pids for f in ds.frames) >= 2
    assert all((f.boxes[:, 2:] > f.boxes[:, :2]).all() for f in ds.frames)


def test_mot_reader_labels_queries_and_cameras(mot) -> None:  # type: ignore[no-untyped-def]
    root, truth = mot
    ds = load_dataset(root, "mot")
    assert len(ds.frames) == truth.frames == 20
    assert {f.camera for f in ds.frames} == {"SYN-01", "SYN-02"}
    pids = np.concatenate([f.pids for f in ds.frames])
    assert (pids >= 0).sum() == truth.labeled_boxes and (
        pids == UNLABELED
    ).sum() == truth.unlabeled_boxes
    assert len(ds.queries) == truth.queries
    first = {q.pid: q.frame for q in ds.queries}
    for pid, frame in first.items():  # 'first' rule: no earlier frame of that sequence holds it
        seq = frame.split("/")[0]
        earlier = [f for f in ds.frames if f.camera == seq and f.name < frame]
        assert all(pid not in f.pids for f in earlier)
    strict = load_dataset(root, "mot", min_visibility=1.01)  # nobody is visible enough
    assert (np.concatenate([f.pids for f in strict.frames]) >= 0).sum() == 0 and not strict.queries


def test_prw_fallback_keys_and_negative_coordinates(prw, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "copy"
    shutil.copytree(prw[0], root)
    ann = sorted((root / "annotations").glob("*.mat"))[0]
    savemat(str(ann), {"anno_previous": np.array([[5, -4, -2, 30, 60]], np.float64)})
    ds = load_dataset(root, "prw")
    frame = next(f for f in ds.frames if ann.name.startswith(f.name))
    assert frame.boxes.tolist() == [[0, 0, 26, 58]] and frame.pids.tolist() == [5]


@pytest.mark.parametrize(
    "damage,needle",
    [
        (lambda r: (r / "frame_test.mat").unlink(), "frame_test.mat"),
        (
            lambda r: savemat(
                str(sorted((r / "annotations").glob("*.mat"))[0]), {"boxes": np.zeros((1, 5))}
            ),
            "no 'box_new'",
        ),
        (
            lambda r: savemat(
                str(sorted((r / "annotations").glob("*.mat"))[0]), {"box_new": np.zeros((1, 3))}
            ),
            "expected (N, 5)",
        ),
        (lambda r: (r / "query_info.txt").write_text("1 2 3\n"), "query_info.txt:1"),
        (
            lambda r: (r / "query_info.txt").write_text("1 2 3 4 5 c9s9_000001\n"),
            "not in frame_test.mat",
        ),
        (lambda r: sorted((r / "frames").glob("*.jpg"))[0].unlink(), "a gallery frame"),
    ],
)
def test_malformed_prw_names_the_file(prw, tmp_path: Path, damage, needle: str) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "bad"
    shutil.copytree(prw[0], root)
    damage(root)
    with pytest.raises(DatasetError, match=needle.replace("(", r"\(").replace(")", r"\)")) as err:
        load_dataset(root, "prw")
    assert str(root) in str(err.value)


def test_malformed_mot_and_missing_root(mot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "bad"
    shutil.copytree(mot[0], root)
    (root / "SYN-01" / "gt" / "gt.txt").write_text("1,2,3,4\n")
    with pytest.raises(DatasetError, match="4 columns"):
        load_dataset(root, "mot")
    with pytest.raises(DatasetError, match="no such dataset"):
        load_dataset(tmp_path / "nowhere", "mot")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no MOT sequence"):
        load_dataset(tmp_path / "empty", "mot")
