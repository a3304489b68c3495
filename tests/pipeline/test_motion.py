"""Motion gating (detector.motion): empty footage skips the detector, and the people found
are those found without it."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest


def _plate(h: int = 240, w: int = 320) -> np.ndarray:
    """A textured still scene (a floor with tiles and a wall)."""
    rng = np.random.default_rng(1)
    base = np.tile(np.linspace(60, 180, w, dtype=np.float32), (h, 1))
    base[::16] += 30
    base[:, ::24] -= 25
    base += rng.normal(0, 6, (h, w)).astype(np.float32)
    return np.clip(np.stack([base, base * 0.9, base * 1.1], -1), 0, 255).astype(np.uint8)


def _noisy(plate: np.ndarray, rng: np.random.Generator, gain: float = 1.0) -> np.ndarray:
    frame = plate.astype(np.float32) * gain + rng.normal(0, 3.0, plate.shape)
    return np.clip(frame, 0, 255).astype(np.uint8)


def test_noise_and_lighting_drift_are_not_motion_but_a_small_person_is() -> None:
    from pipeline.core.motion import MotionGate

    plate, rng = _plate(), np.random.default_rng(0)
    gate = MotionGate(fps=10, min_person_px=48, refresh_s=1000)
    assert gate.moved(_noisy(plate, rng))  # the first frame: nothing to compare with
    # 3 s of an empty scene whose light fades by 8 %, then jumps 6 % (auto exposure)
    gains = [*np.linspace(1.0, 0.92, 30), *([0.98] * 5)]
    assert not any(gate.moved(_noisy(plate, rng, g)) for g in gains)
    person = _noisy(plate, rng, 0.98)
    person[100:148, 150:168] = (30, 40, 200)  # 48 px tall, 18 wide: the smallest asked for
    assert gate.moved(person)


def test_the_gate_looks_while_somebody_is_there_and_at_the_refresh() -> None:
    from pipeline.core.motion import MotionGate

    plate, rng = _plate(), np.random.default_rng(0)
    gate = MotionGate(fps=10, min_person_px=48, refresh_s=3.0)

    def feed(frames: int, people: int) -> list[bool]:  # batches of 4, as ingest does
        looks: list[bool] = []
        for _ in range(0, frames, 4):
            batch = gate.choose([_noisy(plate, rng) for _ in range(4)])
            gate.found([people] * sum(batch))
            looks += batch
        return looks

    empty = feed(100, 0)
    # it looks until a second (10 frames) of looks found nobody: three batches ...
    assert empty[:12] == [True] * 12
    # ... then once every 3 s (30 frames) of an empty, still scene
    assert [i for i, on in enumerate(empty) if on][12:] == [41, 71]
    assert gate.skipped == 100 - 14
    # somebody found standing still (no motion): every frame is looked at while they stay
    gate.found([1])
    assert feed(40, 1) == [True] * 40


@pytest.fixture(scope="module")
def idle_clip(vtest_path: Path, tmp_path_factory: Any) -> Any:
    from evaluation.idle import make_idle_clip

    out = tmp_path_factory.mktemp("idle") / "idle.avi"
    return make_idle_clip(vtest_path, out, busy_frames=30, idle_fraction=0.75, chunks=3)


def _ingest(cfg: Any, models: Any, clip: Path, data: Path, motion: str, stop_after: int = 0) -> Any:
    from evaluation.motion_bench import stored_boxes
    from pipeline.context import RunContext
    from pipeline.ingest import ingest_video
    from storage.gallery import Gallery

    run_cfg = replace(cfg, data_dir=data, detector=replace(cfg.detector, motion=motion))
    stop = threading.Event()
    seen = [0]

    def progress(frames: int, _found: int) -> None:
        seen[0] += frames
        if stop_after and seen[0] >= stop_after:
            stop.set()

    with Gallery(run_cfg.db_url, data) as g:
        ctx = RunContext(run_cfg, g, models, progress=progress, stop_event=stop)
        summary = ingest_video(ctx, clip)
        runs = g.runs()
        return summary, stored_boxes(g), runs[0][0]


@pytest.mark.slow
def test_gated_ingest_finds_the_ungated_people_and_skips_the_empty_frames(
    cfg_default, yolo, default_embedder, idle_clip, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from evaluation.motion_bench import box_recall
    from pipeline.context import Models

    models = Models(yolo, default_embedder)
    cfg = replace(cfg_default, storage=replace(cfg_default.storage, commit_frames=20))
    off, boxes_off, run_off = _ingest(cfg, models, idle_clip.path, tmp_path / "off", "off")
    on, boxes_on, run_on = _ingest(cfg, models, idle_clip.path, tmp_path / "on", "auto")
    assert off.frames_gated == 0 and sum(len(b) for b in boxes_off.values()) > 60
    # most empty frames never reach the detector: of each 3-s empty stretch, all but the
    # first second (people were just there) and the 2-s refreshes (3 x (30 - 10 - 2) = 54)
    assert on.frames_gated >= 0.5 * idle_clip.idle_frames, (on.frames_gated, idle_clip)
    # ... and every frame is accounted for, as checked
    assert run_on.frames_processed == run_off.frames_processed == idle_clip.frames
    assert run_on.status == "complete"
    # the same people: the ungated run's boxes are all there, and nothing else is
    assert box_recall(boxes_off, boxes_on) >= 0.99
    assert box_recall(boxes_on, boxes_off) >= 0.99
    assert on.tracks == off.tracks

    # a gated run stopped part-way and resumed stores what the uninterrupted one did
    cut, _, run_cut = _ingest(cfg, models, idle_clip.path, tmp_path / "cut", "auto", 50)
    assert cut.status == "interrupted" and 0 < run_cut.frames_processed < idle_clip.frames
    _, boxes_done, run_done = _ingest(cfg, models, idle_clip.path, tmp_path / "cut", "auto")
    assert run_done.frames_processed == idle_clip.frames and run_done.status == "complete"
    assert sorted(boxes_done) == sorted(boxes_on)
    assert box_recall(boxes_on, boxes_done) == 1.0 and box_recall(boxes_done, boxes_on) == 1.0


def test_the_benchmark_plot_shows_each_idle_share(tmp_path: Path) -> None:
    import cv2

    from evaluation.motion_bench import write_plot

    rows = [
        {"idle_fraction": f, "speedup": s, "speedup_bound": b, "recall_of_ungated_boxes": 1.0}
        for f, s, b in ((0.0, 1.0, 1.0), (0.5, 1.6, 1.9), (0.9, 3.8, 4.2))
    ]
    out = write_plot(rows, tmp_path / "m.png", "Motion gating")
    image = cv2.imread(str(out))
    assert image is not None and image.shape[1] >= 600  # a readable picture
    # the curve is drawn: some pixels are the plot's blue (matplotlib's first colour)
    blue = (abs(image[..., 0].astype(int) - 180) < 30) & (image[..., 2] < 60)
    assert blue.sum() > 200
