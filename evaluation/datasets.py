"""Person-search datasets in their published layouts: PRW (PRW-v16.04.20) and MOT Challenge
(MOT16/17/20). Both load into one in-memory ``SearchDataset``.

Identity convention: ``pids`` >= 0 are labeled people; -2 marks an unlabeled person (a
person the detector should find, who is never a query or a positive).
"""

from __future__ import annotations

import configparser
import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pipeline.core.errors import DatasetError

log = logging.getLogger(__name__)

UNLABELED = -2


@dataclass(frozen=True)
class GalleryFrame:
    name: str  # unique frame name, e.g. "c1s1_000151" or "MOT17-02/000001"
    path: Path
    camera: str
    boxes: NDArray[np.float32]  # (N, 4) xyxy, clipped to >= 0
    pids: NDArray[np.int64]  # (N,), UNLABELED for unlabeled people
    video_frame: int = -1  # >= 0: ``path`` is a video and this frame (0-based) is the image
    gt_ids: NDArray[np.int64] | None = None  # MOT: the ground truth's own track id of each box


@dataclass(frozen=True)
class Query:
    pid: int
    frame: str  # GalleryFrame.name of the frame the query crop comes from
    box: NDArray[np.float32]  # (4,) xyxy
    camera: str


@dataclass(frozen=True)
class SearchDataset:
    name: str
    root: Path
    frames: tuple[GalleryFrame, ...]
    queries: tuple[Query, ...]
    fps: tuple[tuple[str, float], ...] = ()  # (camera, frames per second) where known

    def frame_index(self) -> dict[str, int]:
        return {f.name: i for i, f in enumerate(self.frames)}

    def fingerprint(self) -> str:
        """Changes when frames or annotations change: part of cache keys."""
        h = hashlib.sha1()
        for f in self.frames:
            h.update(f.name.encode())
            h.update(f.boxes.tobytes())
            h.update(f.pids.tobytes())
        for q in self.queries:
            h.update(f"{q.pid}:{q.frame}:{q.box.tolist()}".encode())
        return h.hexdigest()[:16]


def _xywh_to_xyxy(xywh: NDArray[np.floating]) -> NDArray[np.float32]:
    """[x, y, w, h] to [x1, y1, x2, y2]; negative x/y (PRW has some) clip to 0 while the far
    edge stays at x + w, y + h."""
    arr = np.asarray(xywh, np.float32).reshape(-1, 4)
    out = np.concatenate([arr[:, :2], arr[:, :2] + arr[:, 2:]], axis=1)
    out[:, :2] = np.maximum(out[:, :2], 0.0)
    return out


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise DatasetError(f"{path}: missing ({what}); is this the dataset's root folder?")
    return path


# ----------------------------------------------------------------------------------- PRW
def prw_camera(name: str) -> str:
    if not name.startswith("c") or not name[1:2].isdigit():
        raise DatasetError(f"PRW frame name '{name}' does not start with c<camera>")
    return name[1]


def _mat_boxes(path: Path) -> NDArray[np.float64]:
    from scipy.io import loadmat

    try:
        mat = loadmat(str(path))
    except Exception as exc:
        raise DatasetError(f"{path}: not a readable .mat file ({exc})") from None
    for key in ("box_new", "anno_file", "anno_previous"):
        if key in mat:
            arr = np.asarray(mat[key], np.float64)
            if arr.size == 0:
                return np.zeros((0, 5))
            if arr.ndim != 2 or arr.shape[1] != 5:
                raise DatasetError(
                    f"{path}: '{key}' has shape {arr.shape}, expected (N, 5) [id x y w h]"
                )
            return arr
    raise DatasetError(f"{path}: no 'box_new', 'anno_file' or 'anno_previous' key")


def load_prw(root: Path) -> SearchDataset:
    root = Path(root)
    frames_dir = _require(root / "frames", "frames/*.jpg")
    ann_dir = _require(root / "annotations", "annotations/<frame>.jpg.mat")
    from scipy.io import loadmat

    test_mat = _require(root / "frame_test.mat", "frame_test.mat listing the gallery frames")
    try:
        names_raw = loadmat(str(test_mat))["img_index_test"]
    except KeyError:
        raise DatasetError(f"{test_mat}: no 'img_index_test' key") from None
    names = [str(np.asarray(n).squeeze()) for n in np.asarray(names_raw).reshape(-1)]
    names = [n[:-4] if n.endswith(".jpg") else n for n in names]
    frames = []
    for name in names:
        img = _require(frames_dir / f"{name}.jpg", "a gallery frame listed in frame_test.mat")
        arr = _mat_boxes(_require(ann_dir / f"{name}.jpg.mat", "the frame's annotation"))
        pids = arr[:, 0].astype(np.int64)
        pids[pids < 0] = UNLABELED
        frames.append(GalleryFrame(name, img, prw_camera(name), _xywh_to_xyxy(arr[:, 1:]), pids))
    known = {f.name for f in frames}
    queries = []
    qfile = _require(root / "query_info.txt", "query_info.txt")
    for lineno, line in enumerate(qfile.read_text().splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 6:
            raise DatasetError(f"{qfile}:{lineno}: expected 'id x y w h frame_name', got '{line}'")
        pid = int(float(parts[0]))
        box = _xywh_to_xyxy(np.array([float(v) for v in parts[1:5]]))[0]
        frame = parts[5][:-4] if parts[5].endswith(".jpg") else parts[5]
        if frame not in known:
            raise DatasetError(f"{qfile}:{lineno}: query frame {frame} is not in frame_test.mat")
        queries.append(Query(pid, frame, box, prw_camera(frame)))
    return SearchDataset("PRW", root, tuple(frames), tuple(queries))


# ----------------------------------------------------------------------------------- MOT
VIDEO_NAMES = ("video.mp4", "video.avi", "video.mkv", "video.mov", "video.ts")


def _sequences(root: Path) -> list[Path]:
    if (root / "gt" / "gt.txt").exists():
        return [root]
    seqs = sorted(p for p in root.iterdir() if p.is_dir() and (p / "gt" / "gt.txt").is_file())
    if not seqs:
        raise DatasetError(f"{root}: no MOT sequence (SEQ/gt/gt.txt with SEQ/img1) found")
    return seqs


def _sequence_frames(seq: Path, im_dir: str, length: int | None) -> list[tuple[int, Path, int]]:
    """(1-based frame number, file, frame of the video or -1) of every frame of ``seq``: the
    images of ``im_dir``, else the frames of ``SEQ/video.*`` (frame N = the N-th decoded)."""
    images = sorted((seq / im_dir).glob("*.jpg"))
    if images:
        return [(int(p.stem), p, -1) for p in images]
    video = next((seq / n for n in VIDEO_NAMES if (seq / n).is_file()), None)
    if video is None:
        raise DatasetError(
            f"{seq}: no frames: put them in {im_dir}/*.jpg, or the sequence's video as "
            f"{seq.name}/video.mp4 (or .avi)"
        )
    if length is None:
        from pipeline.core.video import probe

        length = probe(video).frame_count
    return [(n, video, n - 1) for n in range(1, length + 1)]


def _mot_rows(gt: NDArray[np.float64], gt_path: Path) -> NDArray[np.float64]:
    """Rows as MOT16+ (frame, id, x, y, w, h, flag, class, visibility). MOT15 files have ten
    columns (frame, id, x, y, w, h, flag, wx, wy, wz) and only pedestrians, all visible."""
    if not gt.size:
        return np.zeros((0, 9))
    if gt.shape[1] == 10:  # MOT15
        out = gt[:, :9].copy()
        out[:, 7], out[:, 8] = 1.0, 1.0
        return out
    if gt.shape[1] < 9:
        raise DatasetError(
            f"{gt_path}: {gt.shape[1]} columns, expected 9 (frame,id,x,y,w,h,flag,class,"
            "visibility) or MOT15's 10"
        )
    return gt[:, :9]


def load_mot(root: Path, min_visibility: float = 0.25, query_frame: str = "first") -> SearchDataset:
    """Labeled = flag 1, class 1 (pedestrian), visibility >= ``min_visibility``; other
    pedestrians are unlabeled. Camera = sequence. One query per identity seen in >= 2
    frames, from its first frame (``query_frame='first'``) or its most visible one."""
    if query_frame not in ("first", "most-visible"):
        raise DatasetError(f"query frame rule '{query_frame}' unknown; use first or most-visible")
    root = Path(root)
    frames: list[GalleryFrame] = []
    appearances: dict[int, list[tuple[float, int, str, NDArray[np.float32], str]]] = {}
    pid_of: dict[tuple[str, int], int] = {}
    rates: list[tuple[str, float]] = []
    for seq in _sequences(root):
        ini = configparser.ConfigParser()
        ini_path = seq / "seqinfo.ini"
        im_dir, length = "img1", None
        if ini_path.exists():
            ini.read(ini_path)
            im_dir = ini.get("Sequence", "imDir", fallback="img1")
            length = ini.getint("Sequence", "seqLength", fallback=None)
        rates.append((seq.name, ini.getfloat("Sequence", "frameRate", fallback=10.0)))
        gt_path = _require(seq / "gt" / "gt.txt", "ground truth gt/gt.txt")
        try:
            gt = _mot_rows(np.loadtxt(gt_path, delimiter=",", ndmin=2), gt_path)
        except ValueError as exc:
            raise DatasetError(f"{gt_path}: not MOT gt text ({exc})") from None
        by_frame: dict[int, list[NDArray[np.float64]]] = {}
        for row in gt:
            by_frame.setdefault(int(row[0]), []).append(row)
        for number, image, video_frame in _sequence_frames(seq, im_dir, length):
            rows = [r for r in by_frame.get(number, []) if int(r[7]) in (1, 2, 7)]  # people classes
            arr = np.array(rows).reshape(-1, 9) if rows else np.zeros((0, 9))
            boxes = _xywh_to_xyxy(arr[:, 2:6]) if len(arr) else np.zeros((0, 4), np.float32)
            pids = np.full(len(arr), UNLABELED, np.int64)
            name = f"{seq.name}/{number:06d}"
            for j, r in enumerate(arr):
                if int(r[6]) == 1 and int(r[7]) == 1 and r[8] >= min_visibility:
                    pid = pid_of.setdefault((seq.name, int(r[1])), len(pid_of))
                    pids[j] = pid
                    appearances.setdefault(pid, []).append(
                        (float(r[8]), number, name, boxes[j], seq.name)
                    )
            gt_ids = arr[:, 1].astype(np.int64)
            frames.append(GalleryFrame(name, image, seq.name, boxes, pids, video_frame, gt_ids))
    queries = []
    for pid, seen in sorted(appearances.items()):
        if len({s[2] for s in seen}) < 2:
            continue
        pick = (
            min(seen, key=lambda s: s[1])
            if query_frame == "first"
            else max(seen, key=lambda s: (s[0], -s[1]))
        )
        queries.append(Query(pid, pick[2], pick[3], pick[4]))
    return SearchDataset(f"MOT:{root.name}", root, tuple(frames), tuple(queries), tuple(rates))


def load_dataset(
    root: Path, fmt: str, min_visibility: float = 0.25, query_frame: str = "first"
) -> SearchDataset:
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such dataset folder")
    match fmt:
        case "prw":
            return load_prw(root)
        case "mot":
            return load_mot(root, min_visibility, query_frame)
        case _:
            raise DatasetError(f"unknown dataset format '{fmt}'; use prw or mot")


def frame_images(ds: SearchDataset) -> Iterator[tuple[int, NDArray[np.uint8]]]:
    """(index in ``ds.frames``, BGR image) of every gallery frame in order; a video's frames
    are decoded in one pass, not seeked one by one."""
    import cv2

    cap: Any = None
    opened: Path | None = None
    position = -1
    try:
        for i, f in enumerate(ds.frames):
            if f.video_frame < 0:
                img = cv2.imread(str(f.path), cv2.IMREAD_COLOR)
                if img is None:
                    raise DatasetError(f"{f.path}: not a readable image")
                yield i, np.asarray(img, np.uint8)
                continue
            if opened != f.path:
                if cap is not None:
                    cap.release()
                cap, opened, position = cv2.VideoCapture(str(f.path)), f.path, 0
            if position != f.video_frame:
                cap.set(cv2.CAP_PROP_POS_FRAMES, f.video_frame)
                position = f.video_frame
            ok, img = cap.read()
            if not ok or img is None:
                raise DatasetError(f"{f.path}: frame {f.video_frame} cannot be decoded")
            position += 1
            yield i, np.asarray(img, np.uint8)
    finally:
        if cap is not None:
            cap.release()


def frame_image(f: GalleryFrame) -> NDArray[np.uint8]:
    """One gallery frame's image (a query's frame)."""
    import cv2

    if f.video_frame < 0:
        img = cv2.imread(str(f.path), cv2.IMREAD_COLOR)
        if img is None:
            raise DatasetError(f"{f.path}: not a readable image")
        return np.asarray(img, np.uint8)
    from pipeline.core.video import read_frames

    for frame in read_frames(f.path, first_index=f.video_frame, stop_index=f.video_frame + 1):
        return frame.image
    raise DatasetError(f"{f.path}: frame {f.video_frame} cannot be decoded")
