"""Inference backends: OpenVINO and ONNX Runtime give the torch model's answers, exports are
cached and replaced when damaged, and settings that cannot work are refused in one line."""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import pytest

from pipeline.core.boxes import iou_matrix

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def frames(vtest_path):  # type: ignore[no-untyped-def]
    from pipeline.core.video import read_frames

    return list(read_frames(vtest_path, start_s=20, end_s=22))  # 20 frames, ~6 people each


@pytest.fixture(scope="module")
def torch_boxes(cfg_default, frames):  # type: ignore[no-untyped-def]
    from detectors import build_detector

    det = build_detector(replace(cfg_default.detector, backend="torch"))
    assert det.backend == "torch"
    return det.detect(frames)


@pytest.mark.parametrize("backend", ["openvino", "onnxruntime"])
def test_detector_backend_finds_the_torch_boxes(backend, cfg_default, frames, torch_boxes):  # type: ignore[no-untyped-def]
    from detectors import build_detector

    det = build_detector(replace(cfg_default.detector, backend=backend))
    assert det.backend == backend
    out = det.detect(frames)
    assert sum(len(d) for d in torch_boxes) >= 60  # the comparison has people to compare
    for ref, got in zip(torch_boxes, out, strict=True):
        assert len(got) == len(ref)
        if len(ref):
            best = iou_matrix(ref.xyxy, got.xyxy).max(axis=1)
            assert best.min() >= 0.98  # stated tolerance: every box, IoU >= 0.98
            np.testing.assert_allclose(np.sort(got.scores), np.sort(ref.scores), atol=0.01)


def test_auto_backend_on_a_cpu_is_openvino(cfg_default):  # type: ignore[no-untyped-def]
    from pipeline.core.backends import resolve_backend

    assert cfg_default.detector.backend == "auto"
    assert resolve_backend("auto", "cpu") == "openvino"
    assert resolve_backend("auto", "cuda:0") == "torch"


@pytest.mark.parametrize("backend", ["openvino", "onnxruntime"])
def test_embedder_backend_agrees_with_torch(backend, cfg_default, frames, torch_boxes):  # type: ignore[no-untyped-def]
    from reid import build_embedder

    crops = [
        f.image[int(y0) : int(y1), int(x0) : int(x1)]
        for f, d in zip(frames, torch_boxes, strict=True)
        for x0, y0, x1, y1 in d.xyxy
    ][:48]
    ref = build_embedder(replace(cfg_default.reid, backend="torch"))
    got = build_embedder(replace(cfg_default.reid, backend=backend))
    a, b = ref.embed(crops), got.embed(crops)
    assert got.backend == backend and ref.backend == "torch"
    assert a.shape == b.shape == (len(crops), ref.dim)
    assert float((a * b).sum(axis=1).min()) >= 0.999  # stated tolerance: cosine >= 0.999


def test_damaged_export_is_made_again(cfg_default, frames, tmp_path, monkeypatch, caplog):  # type: ignore[no-untyped-def]
    from detectors import build_detector

    monkeypatch.setenv("PROWL_CACHE", str(tmp_path / "cache"))
    cfg = replace(cfg_default.detector, backend="onnxruntime")
    first = build_detector(cfg).detect(frames[:2])
    exports = [p for p in (tmp_path / "cache" / "exports").iterdir() if p.is_dir()]
    assert len(exports) == 1 and (exports[0] / "manifest.json").is_file()
    onnx = exports[0] / "model.onnx"
    stamp = onnx.stat().st_mtime_ns
    build_detector(cfg).detect(frames[:2])  # a second use reuses the export
    assert onnx.stat().st_mtime_ns == stamp

    data = bytearray(onnx.read_bytes())  # same size, different content
    data[len(data) // 2] ^= 0xFF
    onnx.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        again = build_detector(cfg).detect(frames[:2])
    assert "damaged" in caplog.text
    assert (exports[0].with_name(exports[0].name + ".rejected")).is_dir()
    for a, b in zip(first, again, strict=True):
        np.testing.assert_allclose(a.xyxy, b.xyxy, atol=1e-3)


def test_int8_keeps_the_fp32_people(cfg_default, frames, vtest_path):  # type: ignore[no-untyped-def]
    """int8 (NNCF, calibrated on the footage itself) finds the people fp32 finds."""
    from detectors import build_detector, build_for_footage
    from pipeline.runs import settings_key

    fp32 = build_detector(replace(cfg_default.detector, backend="openvino")).detect(frames)
    int8_cfg = replace(
        cfg_default.detector, backend="openvino", precision="int8", calibration_frames=16
    )
    # every entry point (CLI, web job, Ray worker, benchmark) builds it this way
    int8_detector = build_for_footage(int8_cfg, vtest_path)
    int8 = int8_detector.detect(frames)
    key = settings_key(replace(cfg_default, detector=int8_cfg), int8_detector, "e")
    assert key.endswith(";precision=int8;calib=footage/16")  # what it was calibrated on
    found = total = 0
    for a, b in zip(fp32, int8, strict=True):
        total += len(a)
        if len(a) and len(b):
            found += int((iou_matrix(a.xyxy, b.xyxy).max(axis=1) >= 0.5).sum())
    assert total >= 60 and found / total >= 0.9


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"detector": {"backend": "tensorrt"}}, "detector.backend"),
        ({"reid": {"backend": "cuda"}}, "reid.backend"),
        ({"detector": {"precision": "fp16"}}, "detector.precision"),
        ({"detector": {"tile_px": 100}}, "detector.tile_px"),
    ],
)
def test_bad_backend_settings_are_refused(override, message):  # type: ignore[no-untyped-def]
    from pipeline.core.config import load_config
    from pipeline.core.errors import ConfigError

    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        load_config(overrides=override)


def test_int8_on_torch_is_refused(cfg_default):  # type: ignore[no-untyped-def]
    from detectors import build_detector

    with pytest.raises(ValueError, match="int8 needs backend openvino"):
        build_detector(replace(cfg_default.detector, backend="torch", precision="int8"))
