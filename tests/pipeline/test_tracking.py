"""The tracker on synthetic trajectories with known identities."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict

import numpy as np

from pipeline.core.tracking import UNTRACKED, ByteTracker
from pipeline.core.types import Detections


def _box(cx: float, bottom: float, w: float = 40, h: float = 100) -> list[float]:
    return [cx - w / 2, bottom - h, cx + w / 2, bottom]


def _run(script: dict[int, list[tuple[int, list[float], float]]], frames: int, seed: int = 0):  # type: ignore[no-untyped-def]
    """``script[f]`` = [(true id, box, score), ...]. Returns {true id: [track id per sighting]}."""
    rng = np.random.default_rng(seed)
    tracker = ByteTracker()
    seen: dict[int, list[int]] = defaultdict(list)
    for f in range(frames):
        people = script.get(f, [])
        if people:
            boxes = np.array([b for _, b, _ in people], np.float32) + rng.normal(
                0, 1.0, (len(people), 4)
            )
            dets = Detections(
                boxes.astype(np.float32), np.array([s for _, _, s in people], np.float32)
            )
        else:
            dets = Detections.empty()
        out = tracker.update(dets, f)
        for (true_id, _, _), tid in zip(people, out.track_ids, strict=True):
            seen[true_id].append(int(tid))
    return seen


def _switches(ids: list[int]) -> int:
    tracked = [i for i in ids if i != UNTRACKED]
    return sum(a != b for a, b in itertools.pairwise(tracked))


def test_crossing_paths_keep_their_identities() -> None:
    script = {
        f: [(1, _box(100 + 8 * f, 300), 0.9), (2, _box(420 - 8 * f, 330), 0.9)] for f in range(40)
    }
    seen = _run(script, 40)
    for true_id in (1, 2):
        assert _switches(seen[true_id]) == 0
        assert seen[true_id].count(UNTRACKED) == 0
    assert set(seen[1]).isdisjoint(seen[2])


def test_occlusion_gap_resumes_the_same_track() -> None:
    script = {f: [(1, _box(50 + 6 * f, 300), 0.85)] for f in range(60) if not 20 <= f < 32}
    seen = _run(script, 60)
    assert len(set(seen[1])) == 1  # one track across the 12-frame gap


def test_entering_and_leaving_give_one_track_each() -> None:
    script: dict[int, list] = defaultdict(list)  # type: ignore[type-arg]
    for f in range(10, 30):
        script[f].append((1, _box(40 + 5 * f, 250), 0.9))
    for f in range(20, 50):
        script[f].append((2, _box(600 - 5 * f, 400), 0.9))
    for f in range(55, 70):  # someone new enters after both left, away from their paths
        script[f].append((3, _box(620, 120 + f), 0.9))
    seen = _run(dict(script), 70)
    ids = {t: set(v) for t, v in seen.items()}
    assert all(len(v) == 1 for v in ids.values())
    assert len(set.union(*ids.values())) == 3


def test_low_confidence_stretch_is_kept_by_the_second_association() -> None:
    script = {f: [(1, _box(100 + 5 * f, 300), 0.3 if 10 <= f < 16 else 0.9)] for f in range(30)}
    seen = _run(script, 30)
    assert len(set(seen[1])) == 1 and UNTRACKED not in seen[1]


def test_a_one_frame_false_positive_does_not_become_a_track() -> None:
    script: dict[int, list] = {f: [(1, _box(100 + 5 * f, 300), 0.9)] for f in range(20)}  # type: ignore[type-arg]
    script[7] = [*script[7], (9, _box(500, 100), 0.95)]
    seen = _run(script, 20)
    assert len(seen[9]) == 1 and len(set(seen[1])) == 1
    counts = Counter(t for ids in seen.values() for t in ids)
    assert sum(1 for n in counts.values() if n >= 2) == 1  # one real track


def test_coasting_frames_carry_each_followed_track_forward_on_its_path() -> None:
    """detector.every_frames: between detected frames the tracker's predicted boxes stand in,
    with the track's id and last score; a track seen once (not yet confirmed) gives none."""
    from pipeline.core.tracking import TrackerConfig

    tracker = ByteTracker(TrackerConfig())
    walker = [_box(100 + 5 * f, 300) for f in range(12)]
    for f in range(8):  # detected every frame: the velocity is learnt
        dets = Detections(np.array([walker[f]], np.float32), np.array([0.8], np.float32))
        (tid,) = tracker.update(dets, f).track_ids
    coasted = [tracker.coast(f) for f in (8, 9, 10)]
    for f, out in zip((8, 9, 10), coasted, strict=True):
        assert out.track_ids is not None and out.track_ids.tolist() == [tid]
        assert out.scores.tolist() == [np.float32(0.8)]
        cx = (out.xyxy[0, 0] + out.xyxy[0, 2]) / 2
        assert abs(cx - (100 + 5 * f)) < 3, (f, cx)  # moving on at ~5 px per frame
    # resumed from its state in the middle of an interval, it predicts the same next box
    again = ByteTracker.from_state(TrackerConfig(), tracker.state())
    assert np.allclose(again.coast(11).xyxy, tracker.coast(11).xyxy)
    # a newcomer seen on one detected frame is not predicted until a second detection
    boxes = np.array([walker[11], _box(400, 300)], np.float32)
    tracker.update(Detections(boxes, np.array([0.8, 0.9], np.float32)), 12)
    later = tracker.coast(13).track_ids
    assert later is not None and later.tolist() == [tid]
