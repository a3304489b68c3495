"""Short clips around a sighting, cut on demand from the source video and cached.

A clip is WebM (VP8, which every browser plays), at most
``MAX_WIDTH_PX`` wide, with the sighting's box — and its track's boxes in the frames around
it — drawn in red (boxes the tracker predicted, with ``detector.every_frames``, in amber).
Clips are cached under the gallery's data folder by the video's content
hash and the frame, written to a temporary name and renamed, so a half-written clip is never
served.

The encoder is the ``ffmpeg`` program's libvpx in its real-time mode when the machine has it
(about four times faster than OpenCV's writer, whose FFmpeg encodes VP8 at its slow "good"
quality setting and takes no options), else OpenCV's bundled writer."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from sqlalchemy import select

from pipeline.core.errors import QueryError
from storage.gallery import Gallery
from storage.models import DetectionRow

MAX_WIDTH_PX = 640


class ClipError(QueryError):
    """A clip could not be written whole (full disk, failing writer): nothing was kept."""


CLIP_SECONDS = 2.0  # before and after the sighting


def clip_path(
    gallery: Gallery,
    detection_id: int,
    seconds: float = CLIP_SECONDS,
    cache_bytes: int | None = None,
    max_width_px: int | None = MAX_WIDTH_PX,
) -> Path:
    """The cached clip of a sighting, cut now if it is not cached yet. A clip enters the cache
    only when it decodes back to every frame written (a full disk truncates files silently);
    otherwise it is deleted and QueryError says so. ``cache_bytes``: the cache is trimmed to
    this size afterwards, least recently used clips first. ``max_width_px`` None: the
    source's own resolution (the viewer's longer clip)."""
    row, video = gallery.detection(detection_id)
    source = Path(video.path)
    if not source.exists():
        raise QueryError(f"the source video of detection {detection_id} is not available")
    digest = video.content_hash.split(":")[-1][:20]
    size = "" if max_width_px == MAX_WIDTH_PX else f"-{max_width_px or 'src'}"
    out = gallery.data_dir / "clips" / f"{digest}-{detection_id}-{seconds:g}s{size}.webm"
    if out.is_file() and out.stat().st_size > 0:
        os.utime(out)  # recently used
        return out
    try:
        _cut(gallery, row, source, out, seconds, max_width_px)
    except OSError as exc:  # the clips folder is full or gone
        raise ClipError(
            f"the clip of detection {detection_id} could not be written "
            f"({exc.strerror or exc}); free space under {out.parent}"
        ) from None
    if cache_bytes is not None:
        trim_cache(out.parent, cache_bytes, keep=out)
    return out


def trim_cache(folder: Path, max_bytes: int, keep: Path | None = None) -> int:
    """Delete the least recently used clips until the folder holds at most ``max_bytes``
    (``keep`` stays). Returns how many were deleted."""
    clips = []
    for p in folder.glob("*.webm"):
        try:
            st = p.stat()
        except OSError:
            continue
        clips.append((st.st_mtime, st.st_size, p))
    total = sum(size for _t, size, _p in clips)
    deleted = 0
    for _t, size, p in sorted(clips):
        if total <= max_bytes:
            break
        if p == keep:
            continue
        p.unlink(missing_ok=True)
        total -= size
        deleted += 1
    return deleted


def decoded_frames(path: Path) -> int:
    """How many frames of ``path`` decode."""
    cap = cv2.VideoCapture(str(path))
    n = 0
    try:
        while cap.isOpened():
            ok, _image = cap.read()
            if not ok:
                break
            n += 1
    finally:
        cap.release()
    return n


@functools.cache
def ffmpeg_vp8() -> str | None:
    """The ffmpeg program, when it has the libvpx VP8 encoder."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        return None
    try:
        out = subprocess.run(
            [exe, "-hide_banner", "-encoders"], capture_output=True, text=True, timeout=20
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return exe if " libvpx " in out else None


class _FFmpegWriter:
    """Raw BGR frames piped to ffmpeg's libvpx (real-time deadline), written as WebM."""

    def __init__(self, exe: str, path: Path, fps: float, w: int, h: int) -> None:
        rate = max(400_000, int(w * h * fps * 0.25))  # bits/s: ~0.25 bit per pixel
        cmd = [exe, "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24"]
        cmd += ["-s", f"{w}x{h}", "-r", f"{fps:g}", "-i", "-", "-c:v", "libvpx"]
        cmd += ["-deadline", "realtime", "-cpu-used", "8", "-b:v", str(rate), "-threads", "1"]
        cmd += ["-pix_fmt", "yuv420p", "-f", "webm", str(path)]
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

    def write(self, image: Any) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(np.ascontiguousarray(image).tobytes())
        except BrokenPipeError:
            raise OSError("the clip encoder stopped (is the disk full?)") from None

    def release(self) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self.proc.stdin.close()
        self.proc.wait(timeout=120)


def _writer(path: Path, fps: float, w: int, h: int) -> Any:
    exe = ffmpeg_vp8()
    if exe is not None:
        return _FFmpegWriter(exe, path, fps, w, h)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"VP80"), fps, (w, h))
    if not writer.isOpened():
        raise QueryError("this OpenCV build cannot write WebM (VP8) clips")
    return writer


def _cut(
    gallery: Gallery,
    row: DetectionRow,
    source: Path,
    out: Path,
    seconds: float,
    max_width_px: int | None = MAX_WIDTH_PX,
) -> None:
    from pipeline.core.video import probe, read_frames

    detection_id = row.id
    info = probe(source)
    fps = info.fps or 25.0
    first = max(0, row.frame_index - round(seconds * fps))
    stop = row.frame_index + round(seconds * fps) + 1
    boxes: dict[int, list[tuple[float, float, float, float, bool]]] = {}
    with gallery.session() as s:
        q = select(
            DetectionRow.frame_index,
            DetectionRow.x1,
            DetectionRow.y1,
            DetectionRow.x2,
            DetectionRow.y2,
            DetectionRow.predicted,
        ).where(DetectionRow.video_id == row.video_id)
        if row.track_id is not None:
            q = q.where(
                DetectionRow.track_id == row.track_id,
                DetectionRow.frame_index >= first,
                DetectionRow.frame_index < stop,
            )
        else:
            q = q.where(DetectionRow.id == detection_id)
        for f, x1, y1, x2, y2, predicted in s.execute(q):
            boxes.setdefault(int(f), []).append((x1, y1, x2, y2, bool(predicted)))
    out.parent.mkdir(parents=True, exist_ok=True)
    # Written as Matroska (WebM is its subset; OpenCV's FFmpeg warns about the VP8 tag in a
    # .webm container but not in .mkv) and served as video/webm.
    fd, tmp_name = tempfile.mkstemp(suffix=".mkv", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    writer: Any = None
    written = 0
    try:
        for frame in read_frames(source, first_index=first, stop_index=stop):
            image = frame.image.copy()
            scale = min(1.0, max_width_px / image.shape[1]) if max_width_px else 1.0
            for x1, y1, x2, y2, predicted in boxes.get(frame.index, []):
                thick = 4 if frame.index == row.frame_index else 2
                # red: detected; amber: the tracker's prediction (detector.every_frames)
                colour = (0, 190, 255) if predicted else (0, 0, 255)
                cv2.rectangle(
                    image,
                    (round(x1), round(y1)),
                    (round(x2), round(y2)),
                    colour,
                    thick,
                )
            if scale < 1.0:
                size = (
                    round(image.shape[1] * scale) // 2 * 2,
                    round(image.shape[0] * scale) // 2 * 2,
                )
                image = np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), np.uint8)
            if writer is None:
                h, w = image.shape[:2]
                writer = _writer(tmp, fps, w - w % 2, h - h % 2)
            writer.write(image[: image.shape[0] // 2 * 2, : image.shape[1] // 2 * 2])
            written += 1
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        if writer is not None:
            writer.release()
    if not written:
        tmp.unlink(missing_ok=True)
        raise QueryError(f"no frames around frame {row.frame_index} could be decoded for a clip")
    got = decoded_frames(tmp)
    if got != written:
        tmp.unlink(missing_ok=True)
        raise ClipError(
            f"the clip of detection {detection_id} came out broken ({got} of {written} frames "
            f"decode; is the disk under {out.parent} full?); nothing was kept"
        )
    os.replace(tmp, out)
