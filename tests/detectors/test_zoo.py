"""Every detector that runs offline finds the people a human sees; online-only ones fail
offline with a clear message. Reference boxes were drawn on the images and checked by eye."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from detectors import build_detector
from pipeline.core.boxes import iou_matrix
from pipeline.core.errors import AssetError
from pipeline.core.types import Frame
from pipeline.core.video import read_frames

pytestmark = pytest.mark.slow

# People a human sees (xyxy, pixels), confirmed by eye on the images.
BUS = np.array([[48, 398, 245, 902], [669, 392, 809, 877], [221, 405, 344, 857], [0, 550, 63, 873]])
ZIDANE = np.array([[114, 197, 1114, 711], [748, 41, 1143, 713]])
VTEST_200 = np.array(
    [
        [616, 264, 648, 368],
        [486, 143, 517, 221],
        [677, 97, 698, 153],
        [704, 253, 742, 355],
        [220, 190, 250, 267],
        [82, 153, 112, 215],
        [702, 105, 722, 156],
    ]
)


def _ultralytics_image(name: str) -> np.ndarray:
    import ultralytics

    img = cv2.imread(str(Path(ultralytics.__file__).parent / "assets" / name))
    assert img is not None
    return img


def _found(det, image: np.ndarray, people: np.ndarray, iou: float = 0.5) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """(people matched by a box at IoU >= iou, boxes matching nobody)."""
    d = det.detect([Frame(image, 0, 0.0, "t")])[0]
    if len(d) == 0:
        return 0, 0
    m = iou_matrix(d.xyxy, people)
    return int((m.max(axis=0) >= iou).sum()), int((m.max(axis=1) < 0.3).sum())


@pytest.mark.parametrize(
    "name,bus,zidane",
    [
        ("yolov8n", 4, 2),
        # its fourth box merges the man on the left with the person cut off at the edge
        ("yolov8s-person", 3, 2),
        ("ssd-mobilenetv2", 3, 2),  # misses the person cut off at the left edge
    ],
)
def test_deep_detectors_find_the_people(cfg_default, name: str, bus: int, zidane: int) -> None:  # type: ignore[no-untyped-def]
    det = build_detector(replace(cfg_default.detector, name=name))
    found, spurious = _found(det, _ultralytics_image("bus.jpg"), BUS)
    assert found >= bus and spurious <= 1
    found, spurious = _found(det, _ultralytics_image("zidane.jpg"), ZIDANE)
    assert found == zidane and spurious == 0


@pytest.mark.parametrize("name,at_least", [("hog", 4), ("haar-fullbody", 3)])
def test_classical_detectors_find_walkers(
    cfg_default, vtest_path, name: str, at_least: int
) -> None:  # type: ignore[no-untyped-def]
    """Full-body detectors are for standing, whole people: the campus walkers, not the
    close-ups (zidane.jpg shows no legs)."""
    det = build_detector(replace(cfg_default.detector, name=name))
    frame = next(iter(read_frames(vtest_path, first_index=200))).image
    found, _ = _found(det, frame, VTEST_200, iou=0.4)
    assert found >= at_least


def test_every_detector_keeps_scores_in_0_1_and_boxes_in_frame(cfg_default, vtest_path) -> None:  # type: ignore[no-untyped-def]
    frames = [f for f in read_frames(vtest_path, end_s=12.0) if f.index in (60, 120)]
    for name in ("yolov8n", "ssd-mobilenetv2", "hog", "haar-fullbody"):
        det = build_detector(replace(cfg_default.detector, name=name, conf=0.05))
        for frame, d in zip(frames, det.detect(frames), strict=True):
            assert ((d.scores >= 0) & (d.scores <= 1)).all(), name
            assert (d.xyxy[:, [0, 2]] <= frame.width_px).all() and (
                d.xyxy[:, [1, 3]] <= frame.height_px
            ).all()
            assert (d.xyxy >= 0).all() and (d.xyxy[:, 2:] > d.xyxy[:, :2]).all()


@pytest.mark.parametrize(
    "name",
    [
        "fasterrcnn_resnet50_fpn_v2",
        "retinanet_resnet50_fpn_v2",
        "fcos_resnet50_fpn",
        "ssdlite320_mobilenet_v3_large",
    ],
)
def test_torchvision_detectors_offline_say_where_to_put_weights(
    cfg_default, name, tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PROWL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    _no_network(monkeypatch)
    with pytest.raises(AssetError) as err:
        build_detector(replace(cfg_default.detector, name=name))
    msg = str(err.value)
    assert "download.pytorch.org" in msg and str(tmp_path / "cache") in msg and "\n" not in msg


def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """The offline case made certain on any machine: the URL route fails as it does here."""
    from pipeline.core import assets

    def refuse(route: object, dest: object) -> None:
        raise OSError("network unreachable (test)")

    monkeypatch.setitem(assets._FETCHERS, "url", refuse)


def test_unknown_detector_lists_valid_names(cfg_default) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="yolov8n, yolov8s-person, ssd-mobilenetv2, hog"):
        build_detector(replace(cfg_default.detector, name="yolo-nope"))
