"""What `prowl models` lists: every detector and embedder, where its files come from, and its
measured speed on this machine (a cached micro-benchmark on the sample video)."""

from __future__ import annotations

import json
import logging
import platform
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.asset_table import known_assets
from pipeline.core.assets import cache_dir, is_present
from pipeline.core.config import Config
from pipeline.core.zoo import ENTRIES, Entry

log = logging.getLogger(__name__)


def _speed_file() -> Path:
    return cache_dir() / "speed.json"


def load_speeds() -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(_speed_file().read_text())
        return data
    except (OSError, ValueError):
        return {}


def files_status(entry: Entry) -> str:
    if not entry.assets:
        return "built in" if entry.source.startswith(("inside", "built")) else "yours"
    if all(is_present(a) for a in entry.assets):
        return "present"
    assets = known_assets()
    offline = all(any(r.kind in ("wheel", "deb") for r in assets[a].routes) for a in entry.assets)
    return "fetched on first use" if offline else "download when online"


def measure(
    cfg: Config, video: Path, frames: int, names: list[str] | None = None
) -> dict[str, Any]:
    """Detectors: frames/s and mean people per frame on the first ``frames`` frames of
    ``video``. Embedders: crops/s at batch 32 on person crops from those frames."""
    from detectors import build_detector
    from pipeline.core.crops import crop_boxes
    from pipeline.core.video import read_frames
    from reid import build_embedder

    sample = list(read_frames(video, stop_index=frames))
    speeds = load_speeds()
    machine = f"{platform.machine()} {platform.processor() or ''} cores={_cores()}".strip()
    crops: list[Any] = []
    for e in ENTRIES:
        if names and e.name not in names:
            continue
        t0 = time.perf_counter()
        try:
            if e.kind == "detector":
                det = build_detector(replace(cfg.detector, name=e.name))
                det.detect(sample[:1])
                t0 = time.perf_counter()
                found = []
                for i in range(0, len(sample), cfg.detector.batch_frames):
                    batch = sample[i : i + cfg.detector.batch_frames]
                    for frame, d in zip(batch, det.detect(batch), strict=True):
                        found.append(len(d))
                        if e.name == "yolov8n" and len(crops) < 256:
                            crops.extend(
                                np.ascontiguousarray(c) for c in crop_boxes(frame.image, d.xyxy)
                            )
                elapsed = time.perf_counter() - t0
                rec = {
                    "value": len(sample) / elapsed,
                    "unit": "frames/s",
                    "people_per_frame": float(np.mean(found)),
                    "frames": len(sample),
                }
            else:
                if e.name.startswith("torchreid"):
                    continue
                emb = build_embedder(replace(cfg.reid, name=e.name, batch_crops=32))
                work = (crops or [np.zeros((128, 48, 3), np.uint8)] * 64)[:128]
                emb.embed(work[:32])
                t0 = time.perf_counter()
                emb.embed(work)
                rec = {
                    "value": len(work) / (time.perf_counter() - t0),
                    "unit": "crops/s",
                    "crops": len(work),
                }
        except Exception as exc:
            rec = {"error": str(exc).splitlines()[0][:200]}
        rec.update(machine=machine, measured_at=datetime.now(UTC).isoformat(timespec="seconds"))
        speeds[e.name] = rec
        log.info("%s: %s", e.name, rec)
    _speed_file().parent.mkdir(parents=True, exist_ok=True)
    _speed_file().write_text(json.dumps(speeds, indent=2))
    return speeds


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def speed_text(name: str, speeds: dict[str, Any]) -> str:
    rec = speeds.get(name)
    if not rec:
        return "not measured"
    if "error" in rec:
        return "unavailable: " + rec["error"][:60]
    extra = f", {rec['people_per_frame']:.1f} people/frame" if "people_per_frame" in rec else ""
    return f"{rec['value']:.1f} {rec['unit']}{extra}"


def table(markdown: bool = False) -> str:
    speeds = load_speeds()
    head = [
        "name",
        "kind",
        "what",
        "source",
        "licence",
        "files",
        "input",
        "dim",
        "speed (this machine)",
    ]
    rows = [
        [
            e.name,
            e.kind,
            e.what,
            e.source,
            e.licence,
            files_status(e),
            e.input,
            e.dim,
            speed_text(e.name, speeds),
        ]
        for e in ENTRIES
    ]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    keep = [0, 1, 5, 6, 7, 8, 4]
    cols = [[head[i] for i in keep]] + [[r[i] for i in keep] for r in rows]
    widths = [max(len(c[i]) for c in cols) for i in range(len(keep))]
    return "\n".join(
        "  ".join(c[i].ljust(widths[i]) for i in range(len(keep))).rstrip() for c in cols
    )
