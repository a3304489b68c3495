"""The demo's second camera: the sample video seen "from elsewhere" — mirrored, with another
colour balance, and recorded later (its start time is shifted). The same people walk through
both, so a search from one camera has true answers on the other and the journey crosses
cameras on one time axis. A demonstration aid, never data that chooses a default."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from pipeline.core.video import probe, read_frames

DEMO_START = "2026-11-25T15:44:00"  # the sample's (made-up) wall-clock start
SECOND_DELAY_S = 30.0  # the second camera's recording starts this much later


def second_camera(source: Path, out: Path, end_s: float | None = None) -> Path:
    """Write ``out`` (MJPEG AVI): ``source`` mirrored left-right, warmer and darker (another
    sensor's white balance and exposure). Kept when it exists and is newer than the source."""
    if out.is_file() and out.stat().st_mtime >= source.stat().st_mtime and out.stat().st_size:
        return out
    info = probe(source)
    tmp = out.with_suffix(".tmp.avi")
    writer = cv2.VideoWriter(
        str(tmp),
        cv2.VideoWriter.fourcc(*"MJPG"),
        info.fps or 10.0,
        (info.width_px, info.height_px),
    )
    gain = np.asarray([0.80, 0.92, 1.12], np.float32)  # B, G, R: a warmer cast
    lut = np.clip(255.0 * (np.arange(256) / 255.0) ** 1.15, 0, 255).astype(np.uint8)
    try:
        for frame in read_frames(source, end_s=end_s):
            img = cv2.flip(frame.image, 1).astype(np.float32) * gain
            writer.write(cv2.LUT(np.clip(img, 0, 255).astype(np.uint8), lut))
    finally:
        writer.release()
    tmp.replace(out)
    return out


def shifted(start_iso: str, seconds: float) -> str:
    from datetime import datetime, timedelta

    return (datetime.fromisoformat(start_iso) + timedelta(seconds=seconds)).isoformat()
