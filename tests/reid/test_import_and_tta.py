"""The default embedder's import from ONNX, flip averaging and query expansion."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

import run_pipeline
from pipeline.query_input import read_frame
from reid import build_embedder
from reid.rerank import expand_query, ranked_positions

SHARED_ONNX = (
    Path(__file__).resolve().parents[3] / "shared/models/osnet_x0_5_msmt17_combineall.onnx"
)
SHIPPED = Path(__file__).resolve().parents[2] / "reid/weights/osnet-x0_5-prowl.pth"


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_ONNX.is_file(), reason="../shared/models ONNX file absent")
def test_the_recipe_remakes_the_shipped_default_from_its_onnx_export(tmp_path: Path) -> None:
    out = tmp_path / "osnet-x0_5-prowl.pth"
    assert run_pipeline.main(["import-onnx", str(SHARED_ONNX), "--out", str(out)]) == 0
    card = json.loads(out.with_suffix(".card.json").read_text())
    assert card["min_cosine_vs_onnxruntime"] >= 0.9999 and card["arch"] == "osnet_x0_5"
    made = torch.load(out, map_location="cpu", weights_only=True)
    shipped = torch.load(SHIPPED, map_location="cpu", weights_only=True)
    assert made.keys() == shipped.keys()
    assert all(torch.equal(made[k], shipped[k]) for k in made)
    # a second run refuses to overwrite what the first wrote
    assert run_pipeline.main(["import-onnx", str(SHARED_ONNX), "--out", str(out)]) == 2


@pytest.mark.slow
def test_flip_averaging_sees_a_person_and_their_mirror_image_alike(
    cfg_default, vtest_path: Path
) -> None:  # type: ignore[no-untyped-def]
    crop = read_frame(vtest_path, 55)[210:299, 484:522]  # a walker seen from the side
    mirror = np.ascontiguousarray(crop[:, ::-1])
    plain = build_embedder(replace(cfg_default.reid, name="osnet-x0_5-prowl"))
    flipped = build_embedder(replace(cfg_default.reid, name="osnet-x0_5-prowl+flip"))
    assert flipped.name == "osnet-x0_5-prowl+flip" and flipped.dim == plain.dim
    a, b = plain.embed([crop, mirror])
    fa, fb = flipped.embed([crop, mirror])
    assert float(a @ b) < 0.999  # the network alone sees the two differently ...
    assert float(fa @ fb) > 0.99999  # ... averaged with its mirror, a crop is symmetric
    assert abs(float(np.linalg.norm(fa)) - 1.0) < 1e-5
    assert flipped.embed([]).shape == (0, plain.dim)


def _unit(*v: float) -> np.ndarray:
    a = np.asarray(v, np.float32)
    return a / np.linalg.norm(a)


def test_query_expansion_finds_the_view_that_looks_like_the_persons_other_views() -> None:
    query = _unit(1, 0, 0, 0)
    front = _unit(0.9, 0.44, 0, 0)  # the person, seen much like the query
    side = _unit(0.9, 0.43, 0.1, 0)  # the person again
    back = _unit(0.35, 0.9, 0, 0.2)  # the person from behind: little like the query ...
    stranger = _unit(0.4, 0, 0, 0.9)  # ... but a stranger looks even less like them
    gallery = np.stack([stranger, back, front, side])
    plain = ranked_positions(query, gallery, pool=4, rerank=False)
    expanded = ranked_positions(query, gallery, pool=4, rerank=False, qe=2)
    assert list(plain[:2]) == [2, 3] and list(expanded[:2]) == [2, 3]
    assert list(plain).index(0) < list(plain).index(1)  # by cosine the stranger comes first
    assert list(expanded).index(1) < list(expanded).index(0)  # expanded, the person does
    same = expand_query(query, gallery[[2, 3]], n=2)
    assert abs(float(np.linalg.norm(same)) - 1) < 1e-6
    assert np.allclose(expand_query(query, gallery[:0]), query)
