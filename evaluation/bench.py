"""The detector × retriever matrix: detect once per detector, embed once per pair, score every
pair, sweep the detection threshold, and write results.csv, results.md and PNG plots."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.datasets import SearchDataset
from evaluation.runner import (
    CACHE_CONF,
    build_embedder_checked,
    cached_features,
    detect_dataset,
    sized_detector,
)
from evaluation.scoring import EvalOptions, score
from pipeline.core.config import Config
from pipeline.core.outputs import make_dir, write_csv

log = logging.getLogger(__name__)

SWEEP = tuple(round(t, 2) for t in np.arange(0.05, 0.951, 0.05))
COLUMNS = [
    "detector",
    "reid",
    "det_recall@0.5",
    "det_ap@0.5",
    "det_recall@0.7",
    "det_ap@0.7",
    "boxes_per_frame",
    "input_px",
    "detect_fps",
    "mAP",
    "mAP_ci95",
    "top1",
    "top5",
    "top10",
]


def run_bench(
    ds: SearchDataset,
    detectors: Sequence[str],
    reids: Sequence[str],
    cfg: Config,
    out_dir: Path,
    cache_dir: Path,
    opts: EvalOptions,
    show_progress: bool = True,
) -> list[dict[str, Any]]:
    from tqdm import tqdm

    make_dir(out_dir)
    n = len(ds.frames)
    total = len(detectors) * n + len(detectors) * len(reids) * n
    rows: list[dict[str, Any]] = []
    sweeps: dict[tuple[str, str], list[dict[str, Any]]] = {}
    with tqdm(total=total, desc="bench", unit="frame", disable=not show_progress) as bar:
        embedders = {name: build_embedder_checked(name, cfg) for name in reids}
        for det_name in detectors:
            bar.set_postfix_str(f"detect {det_name}")
            det_cfg, detector = sized_detector(det_name, cfg, ds)
            det = detect_dataset(ds, detector, det_cfg, cache_dir, bar.update)
            det = replace(det, detector=det_name)  # the variant's name, settings included
            for reid_name in reids:
                bar.set_postfix_str(f"embed {det_name} × {reid_name}")
                feats, qfeats = cached_features(
                    ds, det, embedders[reid_name], cfg.reid.batch_crops, cache_dir, bar.update
                )
                row = score(ds, det, feats, qfeats, opts)
                row["reid"] = reid_name
                row["input_px"] = det_cfg.detector.imgsz_px
                row["detect_fps"] = det.frames_per_s if det.frames_per_s is not None else ""
                rows.append(row)
                sweeps[(det_name, reid_name)] = [
                    score(ds, det, feats, qfeats, EvalOptions(opts.protocol, opts.iou, t, opts.cws))
                    for t in SWEEP
                    if t >= CACHE_CONF
                ]
    _write_tables(rows, out_dir, ds, opts)
    _plot(rows, sweeps, out_dir, ds)
    return rows


def _fmt(v: Any) -> str:
    if isinstance(v, tuple):  # an interval
        return "[" + ", ".join(f"{x:.3f}" for x in v) + "]"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def _write_tables(
    rows: list[dict[str, Any]], out_dir: Path, ds: SearchDataset, opts: EvalOptions
) -> None:
    write_csv(out_dir / "results.csv", COLUMNS, ({k: _fmt(r[k]) for k in COLUMNS} for r in rows))
    head = "| " + " | ".join(COLUMNS) + " |"
    sep = "|" + "|".join("---" for _ in COLUMNS) + "|"
    body = ["| " + " | ".join(_fmt(r[k]) for k in COLUMNS) + " |" for r in rows]
    note = (
        f"{ds.name}: {len(ds.frames)} gallery frames, {len(ds.queries)} queries; protocol "
        f"{opts.protocol}, IoU {opts.iou}, detection threshold {opts.det_thresh}"
        f"{', CWS' if opts.cws else ''}."
    )
    (out_dir / "results.md").write_text("\n".join([note, "", head, sep, *body]) + "\n")


def _plot(
    rows: list[dict[str, Any]],
    sweeps: dict[tuple[str, str], list[dict[str, Any]]],
    out_dir: Path,
    ds: SearchDataset,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def scatter(points: list[dict[str, Any]], x: str, label: str, title: str) -> Any:
        """One labelled point per detector × embedder row: ``x`` against search mAP."""
        fig, ax = plt.subplots(figsize=(6.5, 4.5))
        for r in points:
            ax.scatter(r[x], r["mAP"], s=40)
            ax.annotate(
                label.format(**r),
                (r[x], r["mAP"]),
                fontsize=8,
                xytext=(4, 4),
                textcoords="offset points",
            )
        ax.set_ylabel("search mAP")
        ax.set_title(f"{title} — {ds.name}")
        ax.grid(alpha=0.3, which="both")
        return fig, ax

    fig, ax = scatter(
        rows, "det_recall@0.5", "{detector} × {reid}", "Search mAP vs detector recall"
    )
    ax.set_xlabel("detector recall (IoU 0.5)")
    ax.set_xlim(-0.02, 1.05)
    ax.set_ylim(-0.02, 1.05)
    fig.tight_layout()
    fig.savefig(out_dir / "map_vs_recall.png", dpi=120)
    plt.close(fig)

    timed = [r for r in rows if isinstance(r.get("detect_fps"), float)]
    if timed:  # the trade a default is chosen by: search mAP against detection speed
        fig, ax = scatter(
            timed,
            "detect_fps",
            "{detector} × {reid} ({input_px} px)",
            "Search mAP vs detection speed",
        )
        ax.set_xscale("log")
        ax.set_xlabel("decode + detect, frames/s on this machine (log scale)")
        fig.tight_layout()
        fig.savefig(out_dir / "map_vs_speed.png", dpi=120)
        plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for (det, reid), points in sweeps.items():
        x = [p["boxes_per_frame"] for p in points]
        axes[0].plot(x, [p["mAP"] for p in points], marker="o", ms=3, label=f"{det} × {reid}")
        axes[1].plot(x, [p["top1"] for p in points], marker="o", ms=3, label=f"{det} × {reid}")
    for ax, metric in zip(axes, ("mAP", "top-1"), strict=True):
        ax.set_xlabel("mean boxes per gallery frame (detection threshold swept 0.05–0.95)")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"Search quality vs detection threshold — {ds.name}")
    fig.tight_layout()
    fig.savefig(out_dir / "threshold_sweep.png", dpi=120)
    plt.close(fig)


def write_summary(results: dict[str, list[dict[str, Any]]], out_dir: Path) -> Path:
    """One table over several datasets (``results``: dataset name -> its bench rows, the
    first detector of each being the baseline): detection recall/AP, search mAP with its
    95 % bootstrap interval over queries, top-1, and detection speed as a ratio to the
    baseline measured in the same run (frames/s do not carry over between machines)."""
    head = (
        "| dataset | detector | input px | recall@0.5 | AP@0.5 | search mAP [95% CI] | top-1 "
        "| detect × first row |"
    )
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for name, rows in results.items():
        base = rows[0].get("detect_fps") if rows else None
        for r in rows:
            lo, hi = r["mAP_ci95"]
            fps = r.get("detect_fps")
            ratio = (
                f"{fps / base:.2f}×"
                if isinstance(fps, float) and isinstance(base, float) and base > 0
                else "—"
            )
            lines.append(
                f"| {name} | {r['detector']} × {r['reid']} | {r['input_px']} | "
                f"{r['det_recall@0.5']:.3f} | {r['det_ap@0.5']:.3f} | "
                f"{r['mAP']:.3f} [{lo:.2f}, {hi:.2f}] | {r['top1']:.3f} | {ratio} |"
            )
    path = out_dir / "summary.md"
    make_dir(out_dir)
    path.write_text("\n".join(lines) + "\n")
    return path
