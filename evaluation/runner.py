"""Evaluation runs: detect every gallery frame once per (dataset, detector, settings), embed
once per (detections, embedder), score with the pure metrics. The detector, the crop
function and the embedder are exactly the ones ingest uses."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from detectors import Detector, build_detector
from evaluation.datasets import SearchDataset, frame_image, frame_images
from evaluation.scoring import DetectedDataset, EvalOptions, score
from evaluation.tracking_eval import track_level
from pipeline.core.config import Config
from pipeline.core.crops import crop_boxes
from pipeline.core.errors import ProwlError
from pipeline.core.files import sha256_of
from pipeline.core.stream import batched, prefetch
from pipeline.core.types import Frame
from reid import Embedder, build_embedder
from reid.batching import CropBatcher

log = logging.getLogger(__name__)

# Detections are cached at a low confidence so that any --det-thresh (and the sweep) can
# be scored from one detector pass.
CACHE_CONF = 0.05

Progress = Callable[[int], object]


def _frames(ds: SearchDataset) -> Iterator[Frame]:
    for i, image in frame_images(ds):
        yield Frame(image, i, 0.0, ds.frames[i].camera)


def variant(spec: str, cfg: Config) -> tuple[str, Config]:
    """A detector with settings, for `prowl bench` axes: ``NAME[@OPT+OPT...]`` where OPT is
    an input size (``1280``: fixed, no adaptation), ``tileN`` (tiles of N px), ``int8``,
    ``fixed`` (no adaptation at the configured size) or a backend (``torch``, ``openvino``,
    ``onnxruntime``). Returns (detector name, config)."""
    from dataclasses import replace as _replace

    name, _, opts = spec.partition("@")
    d = cfg.detector
    for opt in filter(None, opts.split("+")):
        if opt.isdigit():
            d = _replace(d, imgsz_px=int(opt), min_person_px=0)
        elif opt.startswith("tile") and opt[4:].isdigit():
            d = _replace(d, tile_px=int(opt[4:]))
        elif opt == "int8":
            d = _replace(d, precision="int8")
        elif opt == "fixed":
            d = _replace(d, min_person_px=0)
        elif opt in ("torch", "openvino", "onnxruntime"):
            d = _replace(d, backend=opt)
        else:
            raise ProwlError(
                f"'{spec}': unknown detector option '{opt}'; use a size (1280), tileN, int8, "
                "fixed or a backend, joined by + (e.g. yolov8n@1280+int8)"
            )
    from pipeline.core.config import check_detector
    from pipeline.core.errors import ConfigError

    try:
        check_detector(d)
    except ConfigError as exc:
        raise ProwlError(f"'{spec}': {exc}") from None
    return name, _replace(cfg, detector=d)


def sized_detector(name: str, cfg: Config, ds: SearchDataset) -> tuple[Config, Detector]:
    """``make_detector`` at the input size ingest would choose for this footage
    (detectors.adaptive: probed on frames spread over the dataset). ``name`` may carry
    settings (see ``variant``)."""
    from detectors.adaptive import PROBE_FRAMES, adapts, settings_of, sized_for

    name, cfg = variant(name, cfg)
    detector = make_detector(name, cfg, ds)
    if not adapts(cfg, detector):
        return cfg, detector
    picks = set(np.linspace(0, len(ds.frames) - 1, PROBE_FRAMES).astype(int).tolist())
    frames = [f for i, f in enumerate(_frames(ds)) if i in picks] if ds.frames else []
    sized = sized_for(cfg, detector, frames)
    return settings_of(cfg, sized), sized


def make_detector(name: str, cfg: Config, ds: SearchDataset) -> Detector:
    """Any detector of the zoo, plus 'gt' and 'gt-jitter[:sigma]' built from ``ds``."""
    from detectors.ground_truth import GroundTruthDetector

    if name == "gt":
        return GroundTruthDetector([f.boxes for f in ds.frames])
    if name.startswith("gt-jitter"):
        _, _, sigma = name.partition(":")
        try:
            jitter = float(sigma or 0.1)
            if not 0 <= jitter <= 10:  # also refuses nan
                raise ValueError(jitter)
            return GroundTruthDetector([f.boxes for f in ds.frames], jitter=jitter)
        except ValueError:
            raise ProwlError(
                f"'{name}': use gt-jitter or gt-jitter:SIGMA (e.g. gt-jitter:0.2)"
            ) from None
    calibration: list[Frame] = []
    if cfg.detector.precision == "int8":  # calibrated on the dataset's own frames
        picks = set(np.linspace(0, len(ds.frames) - 1, cfg.detector.calibration_frames).astype(int))
        calibration = [f for i, f in enumerate(_frames(ds)) if i in picks]
    try:
        return build_detector(
            replace(cfg.detector, name=name, conf=min(cfg.detector.conf, CACHE_CONF)),
            calibration,
        )
    except ValueError as exc:
        raise ProwlError(str(exc)) from None


def _key(*parts: object) -> str:
    return hashlib.sha1("|".join(str(p) for p in parts).encode()).hexdigest()[:16]


def detect_dataset(
    ds: SearchDataset,
    detector: Detector,
    cfg: Config,
    cache_dir: Path,
    progress: Progress | None = None,
) -> DetectedDataset:
    d = cfg.detector
    key = _key(ds.fingerprint(), detector.name, d.imgsz_px, d.iou, CACHE_CONF)
    if d.precision != "fp32" or d.tile_px is not None:  # later settings: old keys unchanged
        key = _key(key, d.precision, d.tile_px, d.tile_overlap)
    path = cache_dir / f"det-{key}.npz"
    if path.is_file():
        data = np.load(path)
        splits = data["splits"]
        boxes = list(np.split(data["boxes"], splits))
        scores = list(np.split(data["scores"], splits))
        fps = float(data["fps"]) if "fps" in data.files else None
        if progress:
            progress(len(ds.frames))
        return DetectedDataset(detector.name, boxes, scores, key, fps)
    boxes, scores = [], []
    started = time.perf_counter()
    for batch in batched(prefetch(_frames(ds), cfg.video.queue_frames), d.batch_frames):
        for det in detector.detect(batch):
            boxes.append(det.xyxy.copy())
            scores.append(det.scores.copy())
        if progress:
            progress(len(batch))
    fps = len(boxes) / max(time.perf_counter() - started, 1e-9)
    cache_dir.mkdir(parents=True, exist_ok=True)
    splits = np.cumsum([len(b) for b in boxes])[:-1]
    tmp = path.with_suffix(".tmp.npz")
    np.savez(
        tmp,
        boxes=np.concatenate(boxes) if boxes else np.zeros((0, 4), np.float32),
        scores=np.concatenate(scores) if scores else np.zeros(0, np.float32),
        splits=splits,
        fps=np.float64(fps),
    )
    tmp.replace(path)
    return DetectedDataset(detector.name, boxes, scores, key, fps)


def embed_boxes(
    ds: SearchDataset,
    boxes: list[NDArray[np.float32]],
    embedder: Embedder,
    batch_crops: int,
    progress: Progress | None = None,
) -> list[NDArray[np.float32]]:
    """Features of every box of every frame, crops batched across frames (as ingest does)."""
    feats: list[NDArray[np.float32]] = [np.zeros((0, embedder.dim), np.float32)] * len(boxes)
    batcher = CropBatcher[int](embedder, batch_crops)

    def flush() -> None:
        for frame_i, _rows, vecs in batcher.flush():
            feats[frame_i] = vecs

    for frame in prefetch(_frames(ds), 8):
        n = len(boxes[frame.index])
        if n:
            batcher.add(frame.index, range(n), crop_boxes(frame.image, boxes[frame.index]))
        if batcher.full:
            flush()
        if progress:
            progress(1)
    flush()
    return feats


def embed_queries(ds: SearchDataset, embedder: Embedder) -> NDArray[np.float32]:
    index = ds.frame_index()
    crops = []
    for q in ds.queries:
        frame_img = frame_image(ds.frames[index[q.frame]])
        crops.append(np.ascontiguousarray(crop_boxes(frame_img, q.box[None])[0]))
    return embedder.embed(crops) if crops else np.zeros((0, embedder.dim), np.float32)


def cached_features(
    ds: SearchDataset,
    det: DetectedDataset,
    embedder: Embedder,
    batch_crops: int,
    cache_dir: Path,
    progress: Progress | None = None,
) -> tuple[list[NDArray[np.float32]], NDArray[np.float32]]:
    weights = sha256_of(Path(embedder.weights)) if embedder.weights else ""
    path = cache_dir / f"emb-{_key(det.key, embedder.name, weights)}.npz"
    if path.is_file():
        data = np.load(path)
        feats = list(np.split(data["feats"], np.cumsum([len(b) for b in det.boxes])[:-1]))
        if progress:
            progress(len(ds.frames))
        return feats, data["queries"]
    feats = embed_boxes(ds, det.boxes, embedder, batch_crops, progress)
    queries = embed_queries(ds, embedder)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(
        tmp,
        feats=np.concatenate(feats) if feats else np.zeros((0, embedder.dim), np.float32),
        queries=queries,
    )
    tmp.replace(path)
    return feats, queries


def evaluate_pair(
    ds: SearchDataset,
    detector: Detector,
    embedder: Embedder,
    cfg: Config,
    cache_dir: Path,
    opts: EvalOptions,
    progress: Progress | None = None,
    tracks: bool = False,
    every_frames: list[int] | None = None,
) -> dict[str, Any]:
    det = detect_dataset(ds, detector, cfg, cache_dir, progress)
    feats, queries = cached_features(ds, det, embedder, cfg.reid.batch_crops, cache_dir, progress)
    result = score(ds, det, feats, queries, opts)
    result["reid"] = embedder.name
    if tracks:
        result.update(track_level(ds, det, feats, queries, opts, cfg.tracking))
    if every_frames:
        from evaluation.tracking_eval import interval_study

        result["interval"] = interval_study(
            ds, det, feats, queries, opts, cfg.tracking, every_frames
        )
    return result


def build_embedder_checked(name: str, cfg: Config) -> Embedder:
    try:
        return build_embedder(replace(cfg.reid, name=name))
    except ValueError as exc:
        raise ProwlError(str(exc)) from None
