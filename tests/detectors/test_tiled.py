"""Tiled detection: tiles cover the frame with the stated overlap, and on footage where
people are small a tiled pass finds people the full-frame pass misses."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from detectors.tiled import nms, tile_origins
from pipeline.core.types import Frame


@given(st.integers(1, 5000), st.integers(64, 1024), st.floats(0, 0.8))
def test_tiles_cover_the_frame_with_overlap(length, tile, overlap):  # type: ignore[no-untyped-def]
    starts = tile_origins(length, tile, overlap)
    assert starts[0] == 0 and starts == sorted(starts)
    assert starts[-1] + tile >= length  # the last tile reaches the edge
    for a, b in itertools.pairwise(starts):
        assert b - a <= tile * (1 - overlap) + 1  # neighbours share at least the overlap
        assert b + tile <= max(length, tile)  # no tile sticks out past the frame


def test_nms_keeps_the_best_of_overlapping_boxes() -> None:
    boxes = np.array([[0, 0, 10, 20], [1, 0, 11, 20], [50, 50, 60, 70]], np.float32)
    scores = np.array([0.6, 0.9, 0.5], np.float32)
    assert list(nms(boxes, scores, 0.5)) == [1, 2]


@pytest.mark.slow
def test_tiles_find_small_people_the_full_frame_misses(cfg_default, vtest_path):  # type: ignore[no-untyped-def]
    """A 4×4 mosaic of the sample footage (3072×2304: at 640 px people are a fifth of their
    size): the full-frame pass misses many of them, the tiled pass finds them again."""
    from detectors import build_detector
    from pipeline.core.video import read_frames

    src = [f.image for f in read_frames(vtest_path, start_s=10, end_s=80, stride=15)][:16]
    rows = [np.concatenate(src[r * 4 : r * 4 + 4], axis=1) for r in range(4)]
    mosaic = Frame(np.ascontiguousarray(np.concatenate(rows, axis=0)), 0, 0.0, "mosaic")
    singles = build_detector(cfg_default.detector).detect(
        [Frame(im, i, 0.0, "cam") for i, im in enumerate(src)]
    )
    people = sum(len(d) for d in singles)  # people visible at the footage's own scale
    full = build_detector(cfg_default.detector).detect([mosaic])[0]
    tiled = build_detector(replace(cfg_default.detector, tile_px=768)).detect([mosaic])[0]
    assert people >= 80
    assert len(full) < 0.7 * people
    assert len(tiled) >= 0.85 * people
    assert len(tiled) <= 1.15 * people  # no duplicates from overlapping tiles
