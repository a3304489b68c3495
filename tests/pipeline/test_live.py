"""Live sources for real: FFmpeg serves vtest.avi as an MPEG-TS stream on a loopback HTTP
port, is killed and started again; prowl keeps ingesting across the break, drops and counts
frames it cannot keep up with, stops cleanly on SIGTERM with everything committed, and says
in one line when a source cannot be reached."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.skipif(
    shutil.which("ffmpeg") is None, reason="no ffmpeg (`make ffmpeg` installs Debian's)"
)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def sender(
    video: Path, port: int, start_s: float = 0, seconds: float = 5, realtime: bool = True
) -> Iterator[subprocess.Popen[bytes]]:
    """FFmpeg streaming ``seconds`` of ``video`` as MPEG-TS over HTTP (it listens; prowl
    connects), at the video's own rate with ``realtime``."""
    cmd = ["ffmpeg", "-loglevel", "error", *(["-re"] if realtime else []), "-ss", str(start_s)]
    cmd += ["-i", str(video), "-t", str(seconds), "-c:v", "mpeg2video", "-q:v", "4"]
    cmd += ["-f", "mpegts", "-listen", "1", f"http://127.0.0.1:{port}/live.ts"]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=10)


def _cfg(cfg_default: Any, data: Path, **live: Any) -> Any:
    settings = dict(connect_tries=20, backoff_max_s=1.0, read_timeout_s=2.0, idle_s=5.0)
    settings.update(live)
    return replace(cfg_default, data_dir=data, live=replace(cfg_default.live, **settings))


@pytest.mark.slow
def test_stream_survives_its_sender_being_killed_and_restarted(
    cfg_default, yolo, default_embedder, vtest_path, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from pipeline.context import Models, RunContext
    from pipeline.live import ingest_live
    from storage.gallery import Gallery

    port = _port()
    cfg = _cfg(cfg_default, tmp_path)
    stop = threading.Event()
    seen = {"frames": 0}
    out: dict[str, Any] = {}

    def progress(frames: int, _found: int) -> None:
        seen["frames"] += frames

    with Gallery(cfg.db_url, tmp_path) as g:
        url = f"http://127.0.0.1:{port}/live.ts"

        def run() -> None:
            out["summary"] = ingest_live(
                RunContext(cfg, g, Models(yolo, default_embedder), progress, stop), url, "gate"
            )

        with sender(vtest_path, port, seconds=30) as first:
            worker = threading.Thread(target=run)
            worker.start()
            deadline = time.monotonic() + 60
            while seen["frames"] < 20 and time.monotonic() < deadline:
                time.sleep(0.1)
            first.kill()  # the camera goes away mid-stream
        before = seen["frames"]
        time.sleep(2)
        with sender(vtest_path, port, start_s=40, seconds=30):
            deadline = time.monotonic() + 60
            while seen["frames"] < before + 20 and time.monotonic() < deadline:
                time.sleep(0.1)
            stop.set()  # what SIGTERM does in the CLI
            worker.join(timeout=60)
        s = out["summary"]
        assert s.status == "complete" and s.live.reconnects >= 1, s
        assert s.frames_processed >= before + 20 > 40
        with g.session() as sess:
            from sqlalchemy import func, select

            from storage.models import DetectionRow, RunRow, VideoRow

            times = sess.execute(
                select(func.min(DetectionRow.timestamp_s), func.max(DetectionRow.timestamp_s))
            ).one()
            run = sess.scalars(select(RunRow)).one()
            video = sess.scalars(select(VideoRow)).one()
        assert run.status == "complete" and run.frames_processed == s.frames_processed
        assert times[1] - times[0] > 4  # wall-clock times span the break
        assert video.start_time is not None and video.camera_id == "gate"
        assert video.path == url


@pytest.mark.slow
def test_overload_drops_frames_and_counts_them(
    cfg_default, yolo, default_embedder, vtest_path, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """FFmpeg sends as fast as it can encode (far above the detector's pace) into a queue of 4
    frames: frames are dropped, counted, and the rest stored."""
    from pipeline.context import Models, RunContext
    from pipeline.live import ingest_live
    from storage.gallery import Gallery

    port = _port()
    cfg = _cfg(cfg_default, tmp_path, connect_tries=20)
    cfg = replace(cfg, video=replace(cfg.video, queue_frames=4))
    with Gallery(cfg.db_url, tmp_path) as g, sender(vtest_path, port, seconds=20, realtime=False):
        stop = threading.Event()
        # the stream is sent within seconds; then the reader only waits to reconnect
        timer = threading.Timer(12, stop.set)
        timer.start()
        s = ingest_live(
            RunContext(cfg, g, Models(yolo, default_embedder), stop_event=stop),
            f"http://127.0.0.1:{port}/live.ts",
        )
        timer.cancel()
    assert s.live.dropped > 0, s.live
    assert s.frames_processed + s.live.dropped == s.live.received


def test_unreachable_stream_is_one_line_and_nothing_stored(tmp_path: Path) -> None:
    port = _port()  # nothing listens
    config = tmp_path / "c.yaml"
    config.write_text("live:\n  connect_tries: 2\n  read_timeout_s: 1\n  backoff_max_s: 1\n")
    argv = [
        sys.executable,
        "-m",
        "run_pipeline",
        "ingest",
        f"http://user:secret@127.0.0.1:{port}/x.ts",
    ]
    argv += ["--end", "5", "--data-dir", str(tmp_path / "g"), "--config", str(config), "-q"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    err = done.stderr.strip().splitlines()
    assert len(err) == 1 and "cannot read http://user:***@127.0.0.1" in err[0], err
    assert "secret" not in done.stderr
    from storage.gallery import Gallery

    with Gallery(f"sqlite:///{tmp_path / 'g' / 'gallery.db'}", tmp_path / "g") as g:
        assert g.videos() == []  # nothing stored


@pytest.mark.slow
def test_sigterm_stops_cleanly_with_everything_committed(vtest_path, tmp_path) -> None:  # type: ignore[no-untyped-def]
    port = _port()
    data = tmp_path / "g"
    with sender(vtest_path, port, seconds=60):
        argv = [sys.executable, "-m", "run_pipeline", "ingest", f"http://127.0.0.1:{port}/live.ts"]
        argv += ["--camera", "door", "--data-dir", str(data), "-q"]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(12)  # model load, connect, a few seconds of stream
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    assert "live:" in out and "frames received" in out
    from storage.gallery import Gallery

    with Gallery(f"sqlite:///{data / 'gallery.db'}", data, must_exist=True) as g:
        runs = g.runs()
        assert len(runs) == 1 and runs[0][0].status == "complete"
        assert runs[0][0].frames_processed > 10 and runs[0][0].detections_count > 0
        assert (
            runs[0][0].frames_processed == runs[0][0].next_frame or runs[0][0].frames_processed > 0
        )


@contextmanager
def both_cores_busy() -> Iterator[None]:
    """Two processes spinning, one per core: the machine is as slow and busy as a CI run's."""
    spin = [sys.executable, "-c", "while True: pass"]
    procs = [subprocess.Popen(spin) for _ in range(2)]
    try:
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait(timeout=10)


@pytest.mark.slow
def test_following_a_file_that_is_still_being_written(
    cfg_default, yolo, default_embedder, vtest_path, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """FFmpeg writes 4 s of vtest.avi to an MPEG-TS file in real time while prowl follows it,
    on a machine whose cores are both busy: every frame is stored (a file waits for the
    pipeline, nothing is dropped however slow it is) with the file's own times, and the run
    ends once the file has not grown for live.idle_s."""
    from pipeline.context import Models, RunContext
    from pipeline.live import ingest_live
    from storage.gallery import Gallery

    growing = tmp_path / "recording.ts"
    cmd = ["ffmpeg", "-loglevel", "error", "-re", "-i", str(vtest_path), "-t", "4"]
    cmd += ["-c:v", "mpeg2video", "-q:v", "4", "-f", "mpegts", str(growing)]
    writer = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while (
            not growing.exists() or growing.stat().st_size < 200_000
        ) and time.monotonic() < deadline:
            time.sleep(0.1)
        cfg = _cfg(cfg_default, tmp_path / "g", idle_s=5.0, read_timeout_s=1.0)
        cfg = replace(cfg, video=replace(cfg.video, queue_frames=2))  # the reader must wait
        with Gallery(cfg.db_url, tmp_path / "g") as g, both_cores_busy():
            s = ingest_live(
                RunContext(cfg, g, Models(yolo, default_embedder)),
                str(growing),
                "recorder",
                follow_file=True,
            )
            assert writer.wait(timeout=30) == 0
            with g.session() as sess:
                from sqlalchemy import func, select

                from storage.models import DetectionRow

                last = sess.scalar(select(func.max(DetectionRow.timestamp_s)))
    finally:
        writer.kill()
    assert s.live.gave_up and "no new frames" in s.live.gave_up
    assert s.live.dropped == 0
    assert s.live.received == s.frames_processed >= 38  # 4 s at 10 frames/s, all of it
    assert last is not None and 3.0 <= last < 4.1  # the file's own clock, not the wall's
