"""A crowded-footage benchmark assembled from real footage: a g×g mosaic of one video, each
tile the video shifted by a few seconds, written in the MOT layout.

People in a mosaic are 1/g of their size at the detector's input (on a 4×4 mosaic of a 768×576
clip at 640 px, a 120-px walker becomes 25 px): the small-people problem of crowded street
footage, with real people. The same person appears in several tiles at different times, so
search has true matches across "cameras" (tiles) and time.

Labels are pseudo-labels: a stronger detector than the default (``label_detector``, at the
footage's native resolution, on every source frame) tracked by prowl's ByteTrack; a track is
one identity. They are biased towards what that detector finds, so the benchmark measures
what the mosaic's downscaling costs a setting, not absolute accuracy; `prowl eval --detector
gt` on it gives the ground-truth-box mAP the goal compares against.
"""

from __future__ import annotations

import configparser
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from pipeline.core.config import Config
from pipeline.core.errors import DatasetError


@dataclass(frozen=True)
class CrowdSummary:
    frames: int
    size_wh: tuple[int, int]
    labeled_boxes: int
    identities: int


def write_crowd(
    video: Path,
    out: Path,
    cfg: Config,
    grid: int = 4,
    frames: int = 40,
    stride: int = 4,
    min_track_frames: int = 15,
    label_detector: str = "yolov8s-person",
    progress: Callable[[int], object] | None = None,
) -> CrowdSummary:
    """Write ``out/<name>/img1/*.jpg`` + ``gt/gt.txt`` + ``seqinfo.ini``: ``frames`` mosaic
    frames; tile j at mosaic frame t shows source frame t·stride + j·offset, the offsets
    spread so that the last tile ends at the end of the clip."""
    from detectors import build_detector
    from pipeline.core.stream import batched
    from pipeline.core.tracking import ByteTracker, TrackerConfig
    from pipeline.core.video import probe, read_frames

    info = probe(video)
    n_src = info.frame_count
    tiles = grid * grid
    span = (frames - 1) * stride
    if n_src <= span + tiles:
        raise DatasetError(f"{video}: {n_src} frames are too few for {frames}×{stride} frames")
    offset = (n_src - 1 - span) // max(1, tiles - 1)
    native = -(-max(info.width_px, info.height_px) // 32) * 32
    det_cfg = replace(cfg.detector, name=label_detector, imgsz_px=native, min_person_px=0)
    detector = build_detector(replace(det_cfg, tile_px=None))
    tracker = ByteTracker(TrackerConfig.from_settings(cfg.tracking, info.fps))
    labels: dict[int, list[tuple[int, np.ndarray]]] = {}  # source frame -> [(track, box)]
    images: dict[int, np.ndarray] = {}
    needed = {t * stride + j * offset for t in range(frames) for j in range(tiles)}
    for batch in batched(read_frames(video), 8):
        for frame, dets in zip(batch, detector.detect(batch), strict=True):
            tracked = tracker.update(dets, frame.index)
            assert tracked.track_ids is not None
            labels[frame.index] = [
                (int(t), b) for t, b in zip(tracked.track_ids, tracked.xyxy, strict=True)
            ]
            if frame.index in needed:
                images[frame.index] = frame.image
        if progress:
            progress(len(batch))
    length: dict[int, int] = {}
    for rows in labels.values():
        for track, _ in rows:
            length[track] = length.get(track, 0) + 1

    keep = {t for t, n in length.items() if n >= min_track_frames}
    return _write_mosaic(
        out / f"{Path(video).stem}-mosaic{grid}x{grid}",
        images,
        {f: [(t, b, t in keep) for t, b in rows] for f, rows in labels.items()},
        (info.width_px, info.height_px),
        info.fps,
        grid,
        frames,
        stride,
        offset,
    )


def write_crowd_from_mot(
    seq: Path,
    out: Path,
    grid: int = 4,
    frames: int = 40,
    stride: int = 4,
    progress: Callable[[int], object] | None = None,
) -> CrowdSummary:
    """The same mosaic made from a labelled MOT sequence (MOT15 or later, images or video):
    its ground truth moved into each tile exactly (a box shifted by the tile's offset; ids
    kept, so a person seen in two tiles at once is one identity; boxes the original marks as
    ignored stay ignored). Real labels, no detector involved: a default may be chosen on it."""
    import configparser as _cp

    from evaluation.datasets import frame_images, load_mot

    ds = load_mot(seq)
    ini = _cp.ConfigParser()
    ini.read(Path(seq) / "seqinfo.ini")
    fps = ini.getfloat("Sequence", "frameRate", fallback=25.0)
    n_src = len(ds.frames)
    tiles = grid * grid
    span = (frames - 1) * stride
    if n_src <= span + tiles:
        raise DatasetError(f"{seq}: {n_src} frames are too few for {frames}×{stride} frames")
    offset = (n_src - 1 - span) // max(1, tiles - 1)
    needed = {t * stride + j * offset for t in range(frames) for j in range(tiles)}
    images: dict[int, np.ndarray] = {}
    labels: dict[int, list[tuple[int, np.ndarray, bool]]] = {}
    for i, image in frame_images(ds):
        if i in needed:
            images[i] = image
            f = ds.frames[i]
            ids = f.gt_ids if f.gt_ids is not None else np.full(len(f.boxes), -1, np.int64)
            labels[i] = [
                (int(ids[j]), f.boxes[j], bool(f.pids[j] >= 0)) for j in range(len(f.boxes))
            ]
        if progress:
            progress(1)
    h, w = next(iter(images.values())).shape[:2]
    return _write_mosaic(
        out / f"{Path(seq).name}-mosaic{grid}x{grid}",
        images,
        labels,
        (w, h),
        fps,
        grid,
        frames,
        stride,
        offset,
    )


def _write_mosaic(
    seq: Path,
    images: dict[int, np.ndarray],
    labels: dict[int, list[tuple[int, np.ndarray, bool]]],
    size_wh: tuple[int, int],
    fps: float,
    grid: int,
    frames: int,
    stride: int,
    offset: int,
) -> CrowdSummary:
    """Write the mosaic sequence: tile j of mosaic frame t is source frame t·stride + j·offset;
    each label (id, box, labelled) moves with its tile."""
    w, h = size_wh
    tiles = grid * grid
    name = seq.name
    (seq / "img1").mkdir(parents=True, exist_ok=True)
    (seq / "gt").mkdir(parents=True, exist_ok=True)
    rows_out: list[str] = []
    labeled = 0
    identities: set[int] = set()
    for t in range(frames):
        canvas = np.zeros((h * grid, w * grid, 3), np.uint8)
        for j in range(tiles):
            src = t * stride + j * offset
            y0, x0 = (j // grid) * h, (j % grid) * w
            canvas[y0 : y0 + h, x0 : x0 + w] = images[src]
            for track, box, keep in labels.get(src, []):
                x1, y1, x2, y2 = (float(v) for v in box)
                labeled += keep
                if keep:
                    identities.add(track)
                rows_out.append(
                    f"{t + 1},{track},{x0 + x1:.1f},{y0 + y1:.1f},{x2 - x1:.1f},{y2 - y1:.1f},"
                    f"{1 if keep else 0},1,1.0"
                )
        cv2.imwrite(str(seq / "img1" / f"{t + 1:06d}.jpg"), canvas, [cv2.IMWRITE_JPEG_QUALITY, 92])
    (seq / "gt" / "gt.txt").write_text("\n".join(rows_out) + "\n")
    ini = configparser.ConfigParser()
    ini.optionxform = str  # type: ignore[assignment,method-assign]
    ini["Sequence"] = {
        "name": name,
        "imDir": "img1",
        "frameRate": f"{fps / stride:g}",
        "seqLength": str(frames),
        "imWidth": str(w * grid),
        "imHeight": str(h * grid),
        "imExt": ".jpg",
    }
    with open(seq / "seqinfo.ini", "w") as fh:
        ini.write(fh)
    return CrowdSummary(frames, (w * grid, h * grid), labeled, len(identities))
