"""Live sources: a camera stream (rtsp://, http(s)://, udp://, tcp://, rtmp://, srt://) or a
file still being written, ingested until stopped.

One reader thread pulls frames through OpenCV's FFmpeg into a bounded queue; when the
detector falls behind, the oldest waiting frame is dropped and counted (the newest picture
matters most in a live view, and memory stays bounded). A stream that breaks is reopened
with exponential back-off (1, 2, 4 ... ``backoff_max_s`` s). Frames carry wall-clock time:
``timestamp_s`` is seconds since the session's first frame, whose ISO time is the video row's
``start_time``; a reconnection gap is simply a stretch without frames. A followed file is read
as it grows (reopened at the next frame) and keeps its own frame times; it ends after
``idle_s`` seconds without growth.

The rows go through the same stages and commits as a file (``pipeline.ingest``): a stop
(SIGTERM, Ctrl-C, ``--end``) commits everything processed and finishes the run."""

from __future__ import annotations

import hashlib
import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from pipeline.core.errors import SourceError
from pipeline.core.redact import redact_url
from pipeline.core.types import Frame
from storage.leases import take

if TYPE_CHECKING:  # the context names the models; live.py itself does not import them
    from pipeline.context import RunContext

log = logging.getLogger(__name__)

LIVE_SCHEMES = (
    "rtsp://",
    "rtsps://",
    "http://",
    "https://",
    "udp://",
    "tcp://",
    "rtmp://",
    "srt://",
)


def is_live(source: str) -> bool:
    return source.lower().startswith(LIVE_SCHEMES)


def redact(url: str) -> str:
    """The URL without its secrets (pipeline.core.redact): what is shown, logged and stored."""
    return redact_url(url)


@dataclass
class LiveStats:
    received: int = 0  # frames read from the source
    dropped: int = 0  # ... of which dropped because the pipeline was behind
    reconnects: int = 0
    gave_up: str | None = None  # why reading ended, when not by a stop


class LiveSource:
    """Frames of a live source, read ahead by a thread into a queue of ``queue_frames``."""

    def __init__(
        self,
        source: str,
        camera: str,
        stop: threading.Event,
        queue_frames: int = 16,
        stride: int = 1,
        connect_tries: int = 5,
        backoff_max_s: float = 30.0,
        read_timeout_s: float = 10.0,
        follow_file: bool = False,
        idle_s: float = 30.0,
        duration_s: float | None = None,
        drop_when_behind: bool = True,
    ) -> None:
        self.source, self.camera, self.stop = source, camera, stop
        # A file being written waits for us (nothing is lost by reading it later); only a
        # camera, which will not wait, may lose frames when the pipeline is behind.
        self.drop_when_behind = drop_when_behind and not follow_file
        self.stride, self.connect_tries, self.backoff_max_s = stride, connect_tries, backoff_max_s
        self.read_timeout_s, self.follow_file, self.idle_s = read_timeout_s, follow_file, idle_s
        self.duration_s = duration_s
        self.stats = LiveStats()
        self.queue: queue.Queue[Frame | None] = queue.Queue(maxsize=queue_frames)
        self.started = time.time()
        self.start_iso = datetime.now(UTC).isoformat(timespec="milliseconds")
        self.fps = 25.0
        self.size_wh = (0, 0)
        self._cap: Any = None
        self._thread: threading.Thread | None = None
        self.closed = threading.Event()  # the consumer is done: the reader ends too

    def _stopped(self) -> bool:
        return self.stop.is_set() or self.closed.is_set()

    def _wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True if stopped meanwhile."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self._stopped():
                return True
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
        return self._stopped()

    # ------------------------------------------------------------------ connecting
    def _open(self) -> Any:
        ms = int(self.read_timeout_s * 1000)
        # Opening probes the stream (FFmpeg reads a few seconds of it) and OpenCV's timer for
        # the first reads starts at the open: the open gets a longer limit than one read.
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 2 * ms + 5000, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
        cap = cv2.VideoCapture(self.source, cv2.CAP_FFMPEG, params)
        if not cap.isOpened():
            cap.release()
            return None
        return cap

    def connect(self) -> None:
        """Open the source, trying ``connect_tries`` times with back-off; SourceError (one
        line) if it never opens. Nothing is stored before this succeeds."""
        delay = 1.0
        for attempt in range(1, self.connect_tries + 1):
            cap = self._open()
            if cap is not None:
                ok, image = cap.read()
                if ok and image is not None:
                    self._cap, self._first = cap, image
                    # The session starts at its first frame, not at the open: opening probes
                    # the stream for seconds, and a duration (--end) counts picture time.
                    self.started = time.time()
                    self.start_iso = datetime.now(UTC).isoformat(timespec="milliseconds")
                    fps = cap.get(cv2.CAP_PROP_FPS)
                    self.fps = float(fps) if 0 < fps < 1000 else 25.0
                    self.size_wh = (image.shape[1], image.shape[0])
                    return
                cap.release()
            if attempt < self.connect_tries and self._wait(delay):
                break
            delay = min(self.backoff_max_s, delay * 2)
        raise SourceError(
            f"cannot read {redact(self.source)} after {self.connect_tries} tries; check the "
            "address and that the camera or sender is running"
        )

    # ------------------------------------------------------------------ reading
    def frames(self) -> Iterator[Frame]:
        """The frames, in order, until a stop, the duration, or the source is gone for good."""
        self._thread = threading.Thread(target=self._read, name="prowl-live", daemon=True)
        self._thread.start()
        while True:
            frame = self.queue.get()
            if frame is None:
                return
            yield frame

    def _put(self, frame: Frame) -> None:
        if not self.drop_when_behind or frame is None:
            while not self.closed.is_set():  # backpressure: wait for the consumer
                try:
                    self.queue.put(frame, timeout=0.2)
                    return
                except queue.Full:
                    continue
            return
        while True:
            try:
                self.queue.put_nowait(frame)
                return
            except queue.Full:
                try:  # behind: the oldest waiting frame goes
                    if self.queue.get_nowait() is not None:
                        self.stats.dropped += 1
                except queue.Empty:
                    pass

    def _read(self) -> None:
        index = 0  # frames received (kept or not): a frame's number in this session
        image: Any = self._first
        delay = 1.0
        last_frame_at = time.monotonic()
        try:
            while not self._stopped():
                if image is None:
                    ok, image = self._cap.read() if self._cap is not None else (False, None)
                    if not ok or image is None:
                        image = None
                        if not self._reopen(index, last_frame_at, delay):
                            return
                        delay = min(self.backoff_max_s, delay * 2)
                        continue
                delay = 1.0
                last_frame_at = time.monotonic()
                now = (index / self.fps) if self.follow_file else time.time() - self.started
                if self.duration_s is not None and now >= self.duration_s:
                    return
                self.stats.received += 1
                if index % self.stride == 0:
                    self._put(Frame(np.asarray(image, np.uint8), index, now, self.camera))
                    last_frame_at = time.monotonic()  # waiting for the consumer is not idling
                index += 1
                image = None
        finally:
            if self._cap is not None:
                self._cap.release()
            self._put(None)  # type: ignore[arg-type]

    def _reopen(self, index: int, last_frame_at: float, delay: float) -> bool:
        """After a failed read: reopen (a file: at the next frame). False = give up."""
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        if self.follow_file and time.monotonic() - last_frame_at > self.idle_s:
            self.stats.gave_up = f"no new frames for {self.idle_s:g} s"
            return False
        log.warning("%s: no frames; reconnecting in %.0f s", redact(self.source), delay)
        if self._wait(delay if not self.follow_file else min(delay, 1.0)):
            return False
        cap = self._open()
        if cap is not None and self.follow_file:
            cap.set(cv2.CAP_PROP_POS_FRAMES, index)
        if cap is not None:
            self._cap = cap
            self.stats.reconnects += 1
        return True


def live_camera_id(source: str) -> str:
    """A camera id for a stream: its host and path (no credentials), or the file's stem."""
    if is_live(source):
        rest = redact(source).split("://", 1)[1].split("?", 1)[0]
        host_path = rest.split("@", 1)[-1]
        return re.sub(r"[^A-Za-z0-9._-]+", "_", host_path).strip("_")[:200] or "stream"
    return Path(source).stem


def ingest_live(
    ctx: RunContext,
    source: str,
    camera_id: str | None = None,
    follow_file: bool = False,
    connected: Callable[[], None] | None = None,
) -> Any:
    """Ingest a live source until ``ctx.stop_event``,
    ``cfg.video.end_s`` seconds of it, or its end (a followed file that stopped growing).
    Returns an IngestSummary with the live counters (received, dropped, reconnects)."""
    from pipeline.frames import StageClock
    from pipeline.ingest import run_stages
    from pipeline.runs import IngestSummary, embedder_row_of, settings_key

    cfg, gallery, embedder, progress = ctx.cfg, ctx.gallery, ctx.embedder, ctx.progress
    detector = ctx.models.detector  # fp32: a live source has nothing to calibrate on beforehand
    stop = ctx.stop_event or threading.Event()
    lc = cfg.live
    camera = camera_id or live_camera_id(source)
    src = LiveSource(
        source,
        camera,
        stop,
        queue_frames=cfg.video.queue_frames,
        stride=cfg.video.stride,
        connect_tries=lc.connect_tries,
        backoff_max_s=lc.backoff_max_s,
        read_timeout_s=lc.read_timeout_s,
        follow_file=follow_file,
        idle_s=lc.idle_s,
        duration_s=cfg.video.end_s,
        drop_when_behind=lc.drop_when_behind,
    )
    src.connect()  # an unreachable source fails here, before anything is stored
    if connected is not None:
        connected()
    shown = redact(source)
    video = gallery.upsert_video(
        shown if not follow_file else Path(source).resolve(),
        "live:" + hashlib.sha256(f"{shown}|{src.start_iso}".encode()).hexdigest()[:40],
        camera,
        src.fps,
        src.size_wh[0],
        src.size_wh[1],
        0,
        None if follow_file else src.start_iso,
        given=not follow_file,
    )
    emb_row = embedder_row_of(gallery, embedder)
    key = settings_key(cfg, detector, embedder.name) + f";live={src.start_iso}"
    run, lease = take(
        gallery, gallery.start_run(video, emb_row, detector.name, key, cfg.video.stride).id
    )
    summary = IngestSummary(video=shown, camera_id=camera, status="complete")
    clock = StageClock()
    started = time.perf_counter()
    try:
        run_stages(src.frames(), cfg, gallery, run, detector, embedder, clock, progress, stop)
    except BaseException as exc:
        gallery.abandon_run(run, str(exc).splitlines()[0][:300] if str(exc) else "failed", False)
        lease.close()
        raise
    finally:
        src.closed.set()  # the reader thread ends too
    try:
        gallery.refresh_video(video, src.stats.received, 0)
        gallery.set_done_ranges(run, f"[[0, {src.stats.received}]]")
        gallery.finish_run(run)
    finally:
        lease.close()
    fresh = gallery.find_run(video.id, key)
    summary.elapsed_s = time.perf_counter() - started
    summary.stage_s, summary.frames_gated = clock.stage_s, clock.gated
    summary.frames_read = src.stats.received
    summary.frames_processed = summary.frames_new = fresh.frames_processed if fresh else 0
    summary.detections = fresh.detections_count if fresh else 0
    summary.embedded = fresh.embedded_count if fresh else 0
    summary.tracks = gallery.track_count(run.id)
    summary.live = src.stats
    return summary
