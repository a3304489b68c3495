"""Embedders on real crops, and the crop → embed path under hostile input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from pipeline.core.config import ReidConfig
from pipeline.core.crops import crop_boxes
from pipeline.core.errors import QueryError
from pipeline.core.video import read_frames
from reid import build_embedder

EMBEDDERS = [
    "hsv",
    pytest.param("mobilenetv2-imagenet", marks=pytest.mark.slow),
    pytest.param("efficientnet-lite0-imagenet", marks=pytest.mark.slow),
]


@pytest.fixture(scope="module")
def walker_pairs(vtest_path, yolo):  # type: ignore[no-untyped-def]
    """(crop in frame f, crop of the same walker in frame f+1, crop of another walker in f):
    the walker followed by the best box overlap between adjacent frames, as a person would."""
    frames = {
        f.index: f
        for f in read_frames(vtest_path, end_s=30.0)
        if f.index in {40, 41, 120, 121, 200, 201, 280, 281}
    }
    pairs = []
    for f in (40, 120, 200, 280):
        a, b = yolo.detect([frames[f], frames[f + 1]])
        a, b = a[a.scores > 0.6], b[b.scores > 0.6]
        if len(a) < 2 or len(b) < 1:
            continue
        i = int(np.argmax((a.xyxy[:, 3] - a.xyxy[:, 1]) * a.scores))
        ious = [_iou(a.xyxy[i], bb) for bb in b.xyxy]
        j = int(np.argmax(ious))
        if ious[j] < 0.5:
            continue
        others = [o for o in range(len(a)) if o != i and _iou(a.xyxy[i], a.xyxy[o]) < 0.1]
        crops_a = crop_boxes(frames[f].image, a.xyxy)
        same = crop_boxes(frames[f + 1].image, b.xyxy[j : j + 1])[0]
        for o in others:
            pairs.append((crops_a[i], same, crops_a[o]))
    assert len(pairs) >= 6
    return pairs


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return float(inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter))


@pytest.mark.parametrize("name", EMBEDDERS)
def test_same_walker_is_closer_than_another(name: str, walker_pairs) -> None:  # type: ignore[no-untyped-def]
    emb = build_embedder(ReidConfig(name=name, batch_crops=16, device="cpu"))
    wins = 0
    for anchor, same, other in walker_pairs:
        v = emb.embed([anchor, same, other])
        assert v.shape == (3, emb.dim) and v.dtype == np.float32
        assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
        wins += float(v[0] @ v[1]) > float(v[0] @ v[2])
    assert wins >= 0.85 * len(walker_pairs), f"{name}: {wins}/{len(walker_pairs)}"


@pytest.mark.parametrize("name", EMBEDDERS)
def test_batching_does_not_change_vectors(name: str, walker_pairs) -> None:  # type: ignore[no-untyped-def]
    crops = [c for triple in walker_pairs for c in triple][:12]
    one = build_embedder(ReidConfig(name=name, batch_crops=1, device="cpu")).embed(crops)
    many = build_embedder(ReidConfig(name=name, batch_crops=32, device="cpu")).embed(crops)
    assert np.allclose(one, many, atol=1e-4)


_images = st.one_of(
    arrays(np.uint8, st.tuples(st.integers(0, 40), st.integers(0, 40), st.sampled_from([1, 3, 4]))),
    arrays(np.uint8, st.tuples(st.integers(0, 40), st.integers(0, 40))),
    arrays(np.uint16, st.tuples(st.integers(1, 30), st.integers(1, 30), st.just(3))),
    arrays(
        np.float32,
        st.tuples(st.integers(1, 30), st.integers(1, 30), st.just(3)),
        elements=st.floats(-2, 2, width=32),
    ),
)
_boxes = arrays(
    np.float32, st.tuples(st.integers(0, 4), st.just(4)), elements=st.floats(-100, 200, width=32)
)


@pytest.fixture(scope="module")
def hsv():  # type: ignore[no-untyped-def]
    return build_embedder(ReidConfig(name="hsv", batch_crops=8, device="cpu"))


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(image=_images, boxes=_boxes)
def test_crop_and_embed_never_crash(hsv, image: np.ndarray, boxes: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    try:
        from pipeline.core.crops import to_bgr_uint8

        frame = to_bgr_uint8(image)
    except QueryError:
        return  # a zero-sized image: refused with a clear error
    crops = crop_boxes(frame, boxes)
    assert len(crops) == len(boxes)
    for crop in crops:
        try:
            v = hsv.embed([crop])
        except QueryError as exc:
            assert "empty" in str(exc)
            assert crop.size == 0
            continue
        assert v.shape == (1, hsv.dim) and np.isfinite(v).all()
        assert abs(float(np.linalg.norm(v)) - 1.0) < 1e-4


@pytest.mark.slow
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(image=_images)
def test_default_embedder_takes_any_crop(default_embedder, image: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    try:
        v = default_embedder.embed([image])
    except QueryError as exc:
        assert "empty" in str(exc) or "shape" in str(exc)
        return
    assert v.shape == (1, 512) and np.isfinite(v).all()


def test_online_only_embedders_fail_offline_with_the_fix(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from pipeline.core.errors import AssetError

    monkeypatch.setenv("PROWL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    from tests.detectors.test_zoo import _no_network

    _no_network(monkeypatch)
    with pytest.raises(AssetError) as err:
        build_embedder(ReidConfig(name="resnet50-imagenet", batch_crops=8, device="cpu"))
    assert "resnet50-0676ba61.pth" in str(err.value) and "place it at" in str(err.value)
    with pytest.raises(AssetError, match="--reid-weights"):
        build_embedder(ReidConfig(name="torchreid:osnet_x1_0", batch_crops=8, device="cpu"))
    with pytest.raises(ValueError, match="efficientnet-lite0-imagenet"):
        build_embedder(ReidConfig(name="nope", batch_crops=8, device="cpu"))
