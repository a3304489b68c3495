"""Video sources: a video file decoded with OpenCV, or a folder of images (sorted by name,
as PRW and MOT ship their frames). Both yield ``Frame`` objects."""

from __future__ import annotations

import bisect
import itertools
import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path

import cv2
import numpy as np

from pipeline.core.crops import to_bgr_uint8
from pipeline.core.errors import SourceError
from pipeline.core.timeline import exif_time, mp4_creation_time, stamp_in_name
from pipeline.core.types import Frame

log = logging.getLogger(__name__)

# FFmpeg (inside OpenCV) prints its own complaints ("moov atom not found", h264 slice errors)
# straight to stderr; prowl reports a bad source in one line of its own. OpenCV reads this
# once, at the first capture; a user who wants FFmpeg's words sets it (e.g. 24 = warnings).
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
DEFAULT_IMAGE_FPS = 25.0
# Frames bigger than this are refused rather than allowed to exhaust memory downstream.
MAX_FRAME_PIXELS = 64_000_000


@dataclass(frozen=True)
class SourceInfo:
    path: Path
    is_image_folder: bool
    fps: float
    frame_count: int  # as the container claims it; may be wrong for damaged files
    width_px: int
    height_px: int
    # An image folder's own timeline (seconds from its first image), from the times in its
    # file names or EXIF; None: frames are 1/fps apart.
    timestamps_s: tuple[float, ...] | None = None
    start_time: str | None = None  # ISO 8601 wall-clock time of frame 0, when the source says

    @property
    def duration_s(self) -> float:
        if self.timestamps_s:
            return self.timestamps_s[-1] + 1.0 / self.fps
        return self.frame_count / self.fps if self.fps > 0 else 0.0

    def timestamp_of(self, index: int) -> float:
        if self.timestamps_s is not None and index < len(self.timestamps_s):
            return self.timestamps_s[index]
        return index / self.fps


def camera_id_for(path: Path) -> str:
    """Default camera id: the file (or folder) name without its extension."""
    return path.stem if path.is_file() else path.name


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _read_image(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise SourceError(f"{path}: not a readable image; remove it or convert it to JPEG/PNG")
    return to_bgr_uint8(img)


def _folder_timeline(
    files: list[Path], image_fps: float | None
) -> tuple[float, tuple[float, ...] | None, str | None]:
    """(fps, per-frame seconds or None, start time) of a folder of frames: ``image_fps`` when
    given; else the times in the file names, or in the images' EXIF, when every image has one
    and they never go back; else 25 fps."""
    if image_fps is not None:
        return image_fps, None, None
    for read in (lambda p: stamp_in_name(p.name), exif_time):
        if read(files[0]) is None:
            continue
        times = [read(p) for p in files]
        if any(t is None for t in times):
            continue
        t0 = times[0]
        assert t0 is not None
        offsets = tuple((t - t0).total_seconds() for t in times if t is not None)
        if any(b < a for a, b in itertools.pairwise(offsets)):
            continue
        span = offsets[-1]
        fps = (len(offsets) - 1) / span if span > 0 else DEFAULT_IMAGE_FPS
        return fps, offsets, t0.isoformat()
    return DEFAULT_IMAGE_FPS, None, None


MAX_FRAME_COUNT = 10**9  # ~1 year at 30 frames/s; a count beyond it is a container's nonsense


def probe(path: Path, image_fps: float | None = None) -> SourceInfo:
    """What a source holds, without decoding it all. Raises SourceError for unusable input.
    ``image_fps`` sets an image folder's frame rate (default: its file names' or EXIF times,
    else 25 fps)."""
    path = Path(path)
    if not path.exists():
        raise SourceError(f"{path}: no such file or folder; check the path")
    if path.is_dir():
        files = _image_files(path)
        if not files:
            raise SourceError(
                f"{path}: folder holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})"
            )
        first = None
        for file in files[:50]:  # size the frames by the first readable image
            try:
                first = _read_image(file)
                break
            except SourceError:
                continue
        if first is None:
            raise SourceError(f"{path}: none of the first images is readable; check the folder")
        fps, times, start = _folder_timeline(files, image_fps)
        return SourceInfo(path, True, fps, len(files), first.shape[1], first.shape[0], times, start)
    if path.stat().st_size == 0:
        raise SourceError(f"{path}: file is empty; it is not a video")
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise SourceError(
                f"{path}: not a video OpenCV can decode; check the file or convert it"
            )
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
        if width <= 0 or height <= 0:
            raise SourceError(f"{path}: video has no decodable picture; check the file")
        # An image renamed .avi opens and announces absurd counts: a video has a first frame.
        ok, first_frame = cap.read()
        if not ok or first_frame is None:
            raise SourceError(f"{path}: no frame of it can be decoded; it is not a usable video")
        if count > MAX_FRAME_COUNT or count < 0:
            # The container does not know its length. A still image read as a "video" (a
            # JPEG named .avi) looks like this too: a video has more than one picture.
            ok, _second = cap.read()
            if not ok:
                raise SourceError(f"{path}: holds a single picture, not a video; check the file")
            count = 0  # unknown
    finally:
        cap.release()
    if not math.isfinite(fps) or fps <= 0 or fps > 1000:
        log.warning("%s: container reports fps=%s; assuming 25", path, fps)
        fps = 25.0
    if width * height > MAX_FRAME_PIXELS:
        raise SourceError(
            f"{path}: frames of {width}x{height} exceed {MAX_FRAME_PIXELS} pixels; "
            "downscale it first"
        )
    # A camera's or recorder's own label of the start comes first; a container's creation
    # time is often when the file was exported or transcoded, not recorded.
    named = stamp_in_name(path.name)
    start = named.isoformat() if named else None
    if start is None and path.suffix.lower() in (".mp4", ".mov", ".m4v"):
        created = mp4_creation_time(path)
        start = created.replace(tzinfo=UTC).isoformat() if created else None
    return SourceInfo(path, False, fps, max(count, 0), width, height, None, start)


@dataclass
class DecodeReport:
    """Filled in while ``read_frames`` runs: what was decoded and what was lost."""

    frames_read: int = 0
    frames_yielded: int = 0
    last_index: int = -1
    stopped_early: bool = False
    stopped_at: int = 0  # with stopped_early: the first frame that could not be read
    unreadable: list[str] = field(default_factory=list)  # image files of a folder skipped
    end_index: int = 0  # frames before this index were read (or are past the source's end)
    announced: int = 0  # with stopped_early: the frame count the container announces


def read_frames(
    path: Path,
    camera_id: str | None = None,
    stride: int = 1,
    start_s: float | None = None,
    end_s: float | None = None,
    first_index: int = 0,
    image_fps: float | None = None,
    report: DecodeReport | None = None,
    stop_index: int | None = None,
) -> Iterator[Frame]:
    """Frames of a video file or image folder, keeping every ``stride``-th frame (counted from
    frame 0, so resumed runs keep the same frames) in the half-open window
    [``start_s``, ``end_s``): frame i belongs to it when start_s <= its time < end_s, so two
    windows that meet (``--end 10``, then ``--start 10``) never share a frame. Indices below
    ``first_index`` and from ``stop_index`` on are skipped (resume, and gaps of a window)."""
    info = probe(path, image_fps)
    cam = camera_id or camera_id_for(Path(path))
    rep = report if report is not None else DecodeReport()
    start_index, stop = frame_window(info, start_s, end_s)
    start_index = max(first_index, start_index)
    if stop_index is not None:
        stop = min(stop, stop_index)
    if info.is_image_folder:
        yield from _read_folder(info, cam, stride, start_index, stop, rep)
    else:
        yield from _read_video(info, cam, stride, start_index, stop, rep)


def sample_frames(path: Path, n: int, image_fps: float | None = None) -> list[Frame]:
    """``n`` frames at indices spread over the whole source, each reached by seeking (cheap
    on long videos); frames that cannot be read are left out."""
    info = probe(path, image_fps)
    count = info.frame_count
    if count <= 0:
        return list(read_frames(path, image_fps=image_fps, stop_index=n))
    picks = sorted({int(i) for i in np.linspace(0, count - 1, min(n, count))})
    out: list[Frame] = []
    for i in picks:
        out.extend(read_frames(path, image_fps=image_fps, first_index=i, stop_index=i + 1))
    return out


NO_END = 2**62  # a window's end when none is given: the source's own end


def frame_window(info: SourceInfo, start_s: float | None, end_s: float | None) -> tuple[int, int]:
    """The frame indices [first, stop) whose time t satisfies start_s <= t < end_s: on the
    source's own timeline for a folder with timed file names, else at i / fps."""
    if info.timestamps_s is not None:
        ts = info.timestamps_s
        first = bisect.bisect_left(ts, (start_s or 0.0) - 1e-9)
        stop = NO_END if end_s is None else bisect.bisect_left(ts, end_s - 1e-9)
        return first, stop
    first = math.ceil((start_s or 0.0) * info.fps - 1e-9)
    stop = NO_END if end_s is None else math.ceil(end_s * info.fps - 1e-9)
    return max(0, first), max(0, stop)


def _keep(index: int, stride: int, start_index: int) -> bool:
    return index >= start_index and index % stride == 0


def _read_folder(
    info: SourceInfo,
    cam: str,
    stride: int,
    start_index: int,
    stop: int,
    rep: DecodeReport,
) -> Iterator[Frame]:
    files = _image_files(info.path)
    rep.end_index = min(stop, len(files))
    for index, file in enumerate(files):
        ts = info.timestamp_of(index)
        if index >= stop:
            return
        if not _keep(index, stride, start_index):
            continue
        rep.frames_read += 1
        try:
            image = _read_image(file)
        except SourceError:  # a broken image is a lost frame, as in a damaged video
            rep.unreadable.append(file.name)
            log.info("%s: not a readable image; skipped", file)
            continue
        rep.last_index = index
        rep.frames_yielded += 1
        yield Frame(image, index, ts, cam)


def _read_video(
    info: SourceInfo,
    cam: str,
    stride: int,
    start_index: int,
    stop: int,
    rep: DecodeReport,
) -> Iterator[Frame]:
    cap = cv2.VideoCapture(str(info.path))
    try:
        if start_index > 0:
            # Seeking is exact for intra-only codecs and approximate for others, so land a
            # little early and decode forward; CAP_PROP_POS_FRAMES says where we really are.
            cap.set(cv2.CAP_PROP_POS_FRAMES, max(0, start_index - 1))
            pos = int(cap.get(cv2.CAP_PROP_POS_FRAMES))
            if pos > start_index or pos < 0:
                cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                pos = 0
            index = pos
        else:
            index = 0
        while index < stop:
            keep = _keep(index, stride, start_index)
            ok = cap.grab()
            if not ok:
                break
            ts_ms = float(cap.get(cv2.CAP_PROP_POS_MSEC))
            ts = ts_ms / 1000.0 if ts_ms > 0 or index == 0 else index / info.fps
            rep.frames_read += 1
            if keep:
                ok, image = cap.retrieve()
                if not ok or image is None:
                    log.warning("%s: frame %d could not be decoded; skipped", info.path, index)
                else:
                    rep.last_index = index
                    rep.frames_yielded += 1
                    yield Frame(to_bgr_uint8(image), index, ts, cam)
            index += 1
        rep.end_index = index
        if info.frame_count and index < min(info.frame_count, stop):
            rep.stopped_early = True
            rep.stopped_at, rep.announced = index, info.frame_count
            log.info(  # the caller reports it in its own words
                "%s: decoding stopped at frame %d of %d the container announces",
                info.path,
                index,
                info.frame_count,
            )
    finally:
        cap.release()
