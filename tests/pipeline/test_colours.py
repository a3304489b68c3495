"""Clothing colour naming (pipeline/core/colours.py) on crops whose colours are known by
construction; its accuracy on real people is measured by `make colours-study`."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipeline.core.colours import PALETTE, clothing_colour_sets, clothing_colours, name_pixels


def _person(
    top_bgr: tuple[int, int, int], legs_bgr: tuple[int, int, int], background: tuple[int, int, int]
) -> np.ndarray:
    img = np.full((240, 96, 3), background, np.uint8)
    cv2.ellipse(img, (48, 25), (14, 18), 0, 0, 360, (150, 170, 210), -1)  # a face
    img[45:125, 18:78] = top_bgr
    img[130:225, 24:72] = legs_bgr
    noise = np.random.default_rng(0).normal(0, 6, img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


@pytest.mark.parametrize(
    ("top", "legs", "background", "expected"),
    [
        ((30, 30, 200), (150, 70, 30), (90, 140, 90), ("red", "blue")),  # red jacket, jeans, grass
        ((25, 25, 25), (235, 235, 235), (160, 160, 160), ("black", "white")),  # on grey asphalt
        ((40, 160, 60), (40, 60, 110), (200, 200, 200), ("green", "brown")),
        ((0, 200, 240), (120, 120, 120), (60, 60, 60), ("yellow", "grey")),
    ],
)
def test_names_the_colours_a_person_wears(top, legs, background, expected) -> None:  # type: ignore[no-untyped-def]
    assert clothing_colours(_person(top, legs, background)) == expected


def test_the_background_does_not_vote() -> None:
    """A narrow red top on a wide blue wall is red: the wall is what the crop's border shows."""
    img = _person((30, 30, 200), (30, 30, 30), (200, 80, 20))
    assert clothing_colours(img)[0] == "red"


def test_canonical_pixels_get_their_names() -> None:
    hsv = np.asarray(
        [
            [0, 255, 255],
            [15, 255, 255],
            [28, 255, 255],
            [60, 255, 200],
            [110, 255, 200],
            [140, 200, 200],
            [160, 150, 255],
            [0, 0, 20],
            [0, 0, 240],
            [0, 0, 128],
            [12, 180, 110],
        ],
        np.uint8,
    )
    names = [PALETTE[i] for i in name_pixels(hsv)]
    assert names == [
        "red",
        "orange",
        "yellow",
        "green",
        "blue",
        "purple",
        "pink",
        "black",
        "white",
        "grey",
        "brown",
    ]


def test_tiny_crops_have_no_colour() -> None:
    assert clothing_colours(np.zeros((5, 3, 3), np.uint8)) == (None, None)
    assert clothing_colour_sets(np.zeros((0, 0, 3), np.uint8)) == ([], [])
