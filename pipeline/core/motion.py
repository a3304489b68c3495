"""Motion gating: the detector runs only on frames where something moved or somebody is.

Surveillance footage is mostly empty. Like Frigate, prowl keeps a cheap background model of
each camera (a running average of the downscaled, blurred grey frame) and asks the detector
only when the picture changed or the last detector pass found somebody:

- a frame is *looked at* when enough pixels differ from the background (after taking out
  a global brightness change: a lighting drift or an exposure step is not motion), when
  a person was found in the last second of frames looked at (somebody standing still is
  found again on every frame, exactly as without gating, and a detection that flickers
  off for a frame does not end that), or when ``refresh_s`` seconds passed since the
  last look (a safety net for anything the difference misses);
- a frame looked at where the detector found nobody becomes the background at once (the
  people who just left would otherwise linger in the average for seconds);
- every other frame is *checked, empty*: it is committed like a frame where the detector
  found nobody (done ranges, frame counts and resume stay exact) and the tracker sees an
  empty frame, as it would have.

The threshold follows ``detector.min_person_px``: a change smaller than a tenth of the
smallest person the detector is asked to find does not wake it."""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

WIDTH_PX = 320  # the background model's width (the frame is shrunk to it, never grown)
DIFF_LEVEL = 18  # grey levels (0-255) a pixel must differ by, after blur and global shift
LEARN_RATE = 0.05  # the background follows the picture over ~20 frames (lighting drift)


class MotionGate:
    """Per camera: which frames of a stream the detector must see (``look``) and what it
    found (``found``). Not thread-safe; one per ingest stream."""

    def __init__(self, fps: float, min_person_px: int = 48, refresh_s: float = 2.0) -> None:
        self.refresh_frames = max(1, round(refresh_s * max(fps, 1.0)))
        self.min_person_px = max(8, min_person_px)
        self.background: NDArray[np.float32] | None = None
        self.scale = 1.0
        self.min_pixels = 1
        self.hold_frames = max(1, round(max(fps, 1.0)))  # looks kept after a person is seen
        self.since_look = 0  # frames since the last look
        self.since_someone = 0  # frames looked at since the last one with a person
        self.skipped = 0
        self._last: NDArray[np.float32] | None = None
        self._last_looked: NDArray[np.float32] | None = None

    def _small(self, image: NDArray[np.uint8]) -> NDArray[np.float32]:
        h, w = image.shape[:2]
        if self.background is None:
            self.scale = min(1.0, WIDTH_PX / max(1, w))
            # a person of min_person_px is ~0.35 as wide as tall; a tenth of that area moving
            ph = self.min_person_px * self.scale
            self.min_pixels = max(4, int(0.1 * 0.35 * ph * ph))
        size = (max(1, round(w * self.scale)), max(1, round(h * self.scale)))
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
        small = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
        return cv2.GaussianBlur(small, (5, 5), 0).astype(np.float32)

    def moved(self, image: NDArray[np.uint8]) -> bool:
        """Whether ``image`` differs from the background (which then learns from it)."""
        small = self._last = self._small(image)
        if self.background is None or self.background.shape != small.shape:
            self.background = small
            return True
        diff = small - self.background
        diff -= float(np.median(diff))  # a global brightness change is not motion
        changed = int(np.count_nonzero(np.abs(diff) > DIFF_LEVEL))
        cv2.accumulateWeighted(small, self.background, LEARN_RATE)
        return changed >= self.min_pixels

    def choose(self, images: list[NDArray[np.uint8]]) -> list[bool]:
        """For a batch of consecutive frames: True = the detector sees it. Once one frame of
        the batch is looked at because something moved, so are the rest (what it holds is
        not known yet); a refresh looks at one frame."""
        out: list[bool] = []
        woken = False  # something moved or somebody is there: the rest of the batch is seen
        for image in images:
            moved = self.moved(image)  # every frame feeds the background
            self.since_look += 1
            woken = woken or moved or self.since_someone < self.hold_frames
            on = woken or self.since_look >= self.refresh_frames
            if on:
                self.since_look = 0
            out.append(on)
        self._last_looked = self._last if out and out[-1] else None
        self.skipped += len(out) - sum(out)
        return out

    def found(self, people: list[int], last_detected: bool = True) -> None:
        """How many people each frame detected (in order) held; ``last_detected``: the
        batch's last frame was one of them (not one the tracker predicted)."""
        for n in people:
            self.since_someone = 0 if n > 0 else self.since_someone + 1
        if last_detected and people and people[-1] == 0 and self._last_looked is not None:
            # the batch's last frame is known empty: it is the background now (people who
            # just left would otherwise haunt the running average for seconds)
            self.background = self._last_looked.copy()
