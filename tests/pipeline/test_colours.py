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


def test_a_gallery_from_before_colours_gets_them_from_its_thumbnails(
    vtest_path, tmp_path, capsys
) -> None:  # type: ignore[no-untyped-def]
    """Rows stored without colours match no colour search (and the answer says why);
    `prowl colours` names them from the thumbnails, as ingest named them from the crops."""
    from sqlalchemy import select, update

    import run_pipeline
    from storage.gallery import Gallery
    from storage.models import DetectionRow

    data = ["--data-dir", str(tmp_path)]
    assert run_pipeline.main(["ingest", str(vtest_path), "--end", "2", "-q", *data]) == 0
    url = f"sqlite:///{tmp_path / 'gallery.db'}"
    with Gallery(url, tmp_path) as g, g.session() as s, s.begin():
        named = dict(s.execute(select(DetectionRow.id, DetectionRow.upper_colours)).all())
        s.execute(update(DetectionRow).values(upper_colours=None, lower_colours=None))
    assert len(named) > 20 and all(named.values())
    capsys.readouterr()
    assert run_pipeline.main(["query", "--upper", "black", *data]) == 0
    out = capsys.readouterr()
    assert "no hits" in out.out and "prowl colours" in out.err
    assert run_pipeline.main(["colours", *data]) == 0
    assert f"of {len(named)} sightings" in capsys.readouterr().out
    with Gallery(url, tmp_path) as g, g.session() as s:
        again = dict(s.execute(select(DetectionRow.id, DetectionRow.upper_colours)).all())
    same = sum(again[i].split(",")[0] == named[i].split(",")[0] for i in named)
    assert same >= 0.8 * len(named)  # the thumbnail is the crop, smaller and re-encoded
    assert run_pipeline.main(["colours", *data]) == 0
    assert "already has its colours" in capsys.readouterr().out
