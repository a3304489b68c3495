"""``prowl bench-motion``: ingest with motion gating vs. without, in one process, on footage
with idle stretches made from a real clip (``evaluation.idle``); the gated run's boxes are
compared with the ungated run's, frame by frame."""

from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.config import Config


def stored_boxes(gallery: Any) -> dict[int, Any]:
    """Frame index -> (N, 4) boxes of everything ``gallery`` stores (one video)."""
    from sqlalchemy import select

    from storage.models import DetectionRow

    out: dict[int, list[tuple[float, float, float, float]]] = {}
    with gallery.session() as s:
        rows = s.execute(
            select(
                DetectionRow.frame_index,
                DetectionRow.x1,
                DetectionRow.y1,
                DetectionRow.x2,
                DetectionRow.y2,
            )
        )
        for f, *box in rows:
            out.setdefault(int(f), []).append(tuple(box))
    return {f: np.asarray(b, np.float32) for f, b in out.items()}


def box_recall(reference: dict[int, Any], found: dict[int, Any], iou: float = 0.5) -> float:
    """Share of ``reference``'s boxes that ``found`` has on the same frame (IoU >= ``iou``,
    one to one)."""
    from pipeline.core.boxes import iou_matrix

    total = hit = 0
    for frame, ref in reference.items():
        total += len(ref)
        got = found.get(frame)
        if got is None or not len(got):
            continue
        m = iou_matrix(ref, got)
        while m.size and m.max() >= iou:  # greedy one-to-one
            i, j = np.unravel_index(int(m.argmax()), m.shape)
            hit += 1
            m[i, :], m[:, j] = -1, -1
    return hit / total if total else 1.0


def bench_motion(
    video: Path, cfg: Config, busy_frames: int, fractions: list[float], progress: Any = None
) -> list[dict[str, Any]]:
    """For each idle fraction: a clip of ``busy_frames`` frames of ``video`` with empty
    stretches (``evaluation.idle``), ingested whole without motion gating and with it, in
    one process, alternating; the gated run's boxes compared with the ungated run's."""
    from evaluation.idle import make_idle_clip
    from pipeline.context import RunContext, build_models
    from pipeline.ingest import ingest_video
    from storage.gallery import Gallery

    cfg = replace(cfg, video=replace(cfg.video, start_s=None, end_s=None, stride=1))
    models = build_models(cfg, video)
    out = []
    with tempfile.TemporaryDirectory(prefix="prowl-bench-motion-") as tmp:
        # warm-up, not measured: the detector compiled at the input size this footage gets
        warm = make_idle_clip(video, Path(tmp) / "warm.avi", 8, 0.0)
        warm_cfg = replace(cfg, data_dir=Path(tmp) / "warm", db=None)
        with Gallery(warm_cfg.db_url, warm_cfg.data_dir) as gallery:
            ingest_video(RunContext(warm_cfg, gallery, models), warm.path)
        for fraction in fractions:
            path = Path(tmp) / f"idle-{fraction:g}.avi"
            clip = make_idle_clip(video, path, busy_frames, fraction)
            row: dict[str, Any] = {"idle_fraction": round(clip.idle_fraction, 4)}
            row["frames"] = clip.frames
            boxes, tracks = {}, {}
            for mode in ("off", "auto"):
                run_cfg = replace(
                    cfg,
                    data_dir=Path(tmp) / f"g-{fraction:g}-{mode}",
                    db=None,
                    detector=replace(cfg.detector, motion=mode),
                )
                with Gallery(run_cfg.db_url, run_cfg.data_dir) as gallery:
                    t = time.perf_counter()
                    summary = ingest_video(RunContext(run_cfg, gallery, models), clip.path)
                    row[f"seconds_motion_{mode}"] = time.perf_counter() - t
                    boxes[mode], tracks[mode] = stored_boxes(gallery), summary.tracks
                    if mode == "auto":
                        row["frames_gated"] = summary.frames_gated
                if progress is not None:
                    took = row[f"seconds_motion_{mode}"]
                    progress(f"idle {fraction:g}, motion {mode}: {took:.1f} s")
            row["boxes_ungated"] = sum(len(b) for b in boxes["off"].values())
            row["boxes_gated"] = sum(len(b) for b in boxes["auto"].values())
            row["recall_of_ungated_boxes"] = box_recall(boxes["off"], boxes["auto"])
            row["tracks_ungated"], row["tracks_gated"] = tracks["off"], tracks["auto"]
            row["speedup"] = row["seconds_motion_off"] / row["seconds_motion_auto"]
            out.append(row)
    # The bound: the speed-up if empty frames cost nothing, i.e. the ungated time over the
    # ungated time of the busy frames alone (the idle-0 row, when measured; else by frames,
    # which assumes a busy frame costs what an empty one does: it costs more)
    alone = next((r["seconds_motion_off"] for r in out if r["idle_fraction"] == 0), None)
    for r in out:
        frames_bound = 1 / (1 - r["idle_fraction"])
        r["speedup_bound"] = r["seconds_motion_off"] / alone if alone else frames_bound
    return out


def write_plot(rows: list[dict[str, Any]], out: Path, title: str) -> Path:
    """``out``: speed-up of motion gating against the idle share, with the bound (empty frames
    for free) and each point's recall of the ungated boxes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(rows, key=lambda r: r["idle_fraction"])
    x = [r["idle_fraction"] for r in rows]
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    ax.plot(x, [r["speedup_bound"] for r in rows], "--", color="grey", label="bound")
    ax.plot(x, [r["speedup"] for r in rows], "o-", label="motion gating")
    for r in rows:
        ax.annotate(
            f"recall {r['recall_of_ungated_boxes']:.3f}",
            (r["idle_fraction"], r["speedup"]),
            fontsize=8,
            xytext=(4, -12),
            textcoords="offset points",
        )
    ax.set_xlabel("idle share of the footage")
    ax.set_ylabel("ingest speed-up (ungated time / gated time)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
