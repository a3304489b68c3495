"""Offline stitching of track fragments, on hand-made fragments whose answer is known."""

from __future__ import annotations

import numpy as np

from pipeline.core.stitching import Path, StitchSettings, Stray, Tracklet, fold, stitch


def _unit(*v: float) -> np.ndarray:
    a = np.asarray(v, np.float32)
    return a / np.linalg.norm(a)


def _t(
    tid: int, first: float, last: float, x0: float, x1: float, feat: np.ndarray | None
) -> Tracklet:
    box = lambda x: np.asarray([x, 100, x + 40, 200], np.float32)  # noqa: E731 - 100 px tall
    return Tracklet(tid, first, last, box(x0), box(x1), feat)


def test_a_person_lost_for_a_moment_is_one_track_again() -> None:
    red, blue = _unit(1, 0, 0), _unit(0, 1, 0)
    fragments = [
        _t(1, 0.0, 5.0, 0, 200, red),  # red walks right, is lost at x=200 ...
        _t(2, 6.0, 9.0, 260, 400, red),  # ... and found again a second later, just beyond
        _t(3, 0.0, 9.0, 500, 500, blue),  # blue stands still all along
        _t(4, 9.5, 12.0, 480, 420, blue),  # blue lost at 9.0, found at 9.5 a step away
    ]
    joined = stitch(fragments, StitchSettings())
    assert joined[2] == 1 and joined[1] == 1  # red is one chain, named by its first fragment
    assert joined[3] == 3 and joined[4] == 3
    assert 1 not in (joined[3], joined[4])  # red and blue never join: they look different


def test_no_join_across_a_long_gap_an_impossible_walk_or_another_look() -> None:
    red, green = _unit(1, 0, 0), _unit(0, 0, 1)
    settings = StitchSettings(max_gap_s=4.0, min_similarity=0.7, max_speed_heights_s=2.0)
    far_in_time = [_t(1, 0, 5, 0, 100, red), _t(2, 10, 12, 110, 150, red)]
    too_far = [_t(1, 0, 5, 0, 100, red), _t(2, 5.5, 8, 900, 950, red)]  # 800 px in 0.5 s
    other_look = [_t(1, 0, 5, 0, 100, red), _t(2, 5.5, 8, 110, 150, green)]
    overlapping = [_t(1, 0, 5, 0, 100, red), _t(2, 4, 8, 110, 150, red)]  # two people at once
    for case in (far_in_time, too_far, other_look, overlapping):
        assert stitch(case, settings) == {1: 1, 2: 2}


def test_each_fragment_joins_at_most_one_successor() -> None:
    red = _unit(1, 0, 0)
    close = _unit(1, 0.1, 0)
    fragments = [_t(1, 0, 5, 0, 100, red), _t(2, 6, 8, 110, 150, red), _t(3, 6, 8, 120, 160, close)]
    joined = stitch(fragments, StitchSettings())
    assert joined[2] == 1 and joined[3] == 3  # the more similar one wins; the other stays apart


def _path(cid: int, times: list[float], x: float, feat: np.ndarray | None) -> Path:
    boxes = np.asarray([[x, 100, x + 40, 200]] * len(times), np.float32)
    return Path(cid, np.asarray(times, np.float64), boxes, feat)


def _stray(key: int, t: float, x: float, feat: np.ndarray | None) -> Stray:
    return Stray(key, t, np.asarray([x, 100, x + 40, 200], np.float32), feat)


def test_a_stray_box_joins_the_appearance_it_looks_like_nearby() -> None:
    red, blue = _unit(1, 0, 0), _unit(0, 1, 0)
    paths = [_path(1, [0, 1, 2, 3], 100, red), _path(2, [0, 1, 2, 3], 400, blue)]
    strays = [
        _stray(10, 1.5, 110, _unit(1, 0.1, 0)),  # red again, a low-score box beside her track
        _stray(11, 3.5, 420, blue),  # blue a moment after his track ends
        _stray(12, 1.5, 400, _unit(0, 0, 1)),  # someone else standing where blue is
        _stray(13, 30.0, 100, red),  # looks like red, but long after: maybe her, maybe not
        _stray(14, 1.0, 2000, red),  # looks like red, but far beyond walking distance
        _stray(15, 1.0, 110, None),  # no vector: nothing to judge by
    ]
    assert fold(strays, paths, StitchSettings()) == {10: 1, 11: 2}


def test_a_stray_goes_to_the_most_similar_of_two_candidates() -> None:
    a, b = _unit(1, 0.3, 0), _unit(1, -0.3, 0)
    paths = [_path(1, [0, 1], 100, a), _path(2, [0, 1], 140, b)]
    assert fold([_stray(7, 0.5, 120, _unit(1, -0.25, 0))], paths, StitchSettings()) == {7: 2}
