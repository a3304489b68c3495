"""Crash, signal, concurrency and bad-input behaviour of `prowl ingest` on real footage."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from storage.gallery import Gallery
from storage.index import VectorIndex

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
# [0, 20 s): frames 0-199 of vtest.avi: long enough that a kill armed after up to 50 committed
# frames plus 0.6 s still lands mid-run on a fast CPU (6 s was over before it on a Zen 4)
END_S = "20"
FRAMES = 200


def _cfg(tmp: Path) -> Path:
    """Small transactions, so there are many points to be killed between (and within)."""
    path = tmp / "small-commits.yaml"
    path.write_text("storage:\n  commit_frames: 4\ndetector:\n  batch_frames: 2\n")
    return path


def _ingest(video: Path, data_dir: Path, cfg: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "run_pipeline.py",
        "ingest",
        str(video),
        "--end",
        END_S,
        "--reid",
        "hsv",
        "--data-dir",
        str(data_dir),
        "--config",
        str(cfg),
        "-q",
        *extra,
    ]


def _rows(data_dir: Path) -> list[tuple[int, float, float, float, float]]:
    with sqlite3.connect(data_dir / "gallery.db") as db:
        return sorted(db.execute("SELECT frame_index, x1, y1, x2, y2 FROM detections").fetchall())


def _track_view(data_dir: Path) -> tuple[set[frozenset[int]], list[int], list[tuple[int, ...]]]:
    """What resume must reproduce beyond the boxes: the partition of detections into tracks
    (detections numbered in frame/box order), which of them were embedded, and the tracks
    table (first/last frame, sightings, embedded)."""
    with sqlite3.connect(data_dir / "gallery.db") as db:
        dets = db.execute(
            "SELECT frame_index, x1, track_id, embedding IS NOT NULL FROM detections"
        ).fetchall()
        tracks = db.execute(
            "SELECT first_frame, last_frame, detections, embedded FROM tracks"
        ).fetchall()
    dets.sort(key=lambda r: (r[0], round(r[1])))
    groups: dict[int, set[int]] = {}
    for pos, (_f, _x, tid, _e) in enumerate(dets):
        if tid is not None:
            groups.setdefault(tid, set()).add(pos)
    return (
        {frozenset(g) for g in groups.values()},
        [int(r[3]) for r in dets],
        sorted(tuple(t) for t in tracks),
    )


def _same_tracks(data_dir: Path, reference_dir: Path) -> None:
    got, want = _track_view(data_dir), _track_view(reference_dir)
    assert got[0] == want[0], "tracks split or merged differently after resume"
    assert got[1] == want[1], "other crops embedded after resume"
    assert got[2] == want[2], "tracks table differs after resume"


def _ids(data_dir: Path) -> list[int]:
    """Ids of the embedded detections: exactly what the index must hold."""
    with sqlite3.connect(data_dir / "gallery.db") as db:
        return sorted(
            r[0] for r in db.execute("SELECT id FROM detections WHERE embedding IS NOT NULL")
        )


def _committed_frames(data_dir: Path) -> int:
    try:
        with sqlite3.connect(data_dir / "gallery.db", timeout=5) as db:
            row = db.execute("SELECT max(next_frame) FROM ingest_runs").fetchone()
            return int(row[0] or 0)
    except sqlite3.Error:
        return 0


def _run_status(data_dir: Path) -> str | None:
    try:
        with sqlite3.connect(data_dir / "gallery.db", timeout=5) as db:
            row = db.execute("SELECT status FROM ingest_runs").fetchone()
            return None if row is None else str(row[0])
    except sqlite3.Error:
        return None


def _same_detections(a: list[tuple], b: list[tuple]) -> None:  # type: ignore[type-arg]
    assert len(a) == len(b)
    assert [r[0] for r in a] == [r[0] for r in b]
    assert np.allclose(np.array(a)[:, 1:], np.array(b)[:, 1:], atol=0.5)


@pytest.fixture(scope="module")
def reference(vtest_path: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("reference")
    proc = subprocess.run(
        _ingest(vtest_path, tmp / "data", _cfg(tmp)),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    rows = _rows(tmp / "data")
    assert len(rows) > 100
    assert len(_track_view(tmp / "data")[2]) >= 5  # people were tracked: a partition to compare
    return rows, tmp / "data"


def _wait_then(proc: subprocess.Popen, data_dir: Path, min_frames: int, extra_s: float) -> int:  # type: ignore[type-arg]
    deadline = time.monotonic() + 300
    while (
        _committed_frames(data_dir) < min_frames
        and proc.poll() is None
        and time.monotonic() < deadline
    ):
        time.sleep(0.05)
    time.sleep(extra_s)
    return _committed_frames(data_dir)


def test_sigkill_at_seeded_points_then_resume_matches_uninterrupted(
    reference, vtest_path, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(20261123)
    cfg = _cfg(tmp_path)
    survived = []
    # (frames committed before the kill is armed, extra delay): one kill during start-up,
    # the others at random moments of the detect/embed/commit loop.
    points = [(0, rng.uniform(0.5, 2.0))] + [
        (rng.randint(1, 50), rng.uniform(0, 0.6)) for _ in range(2)
    ]
    for i, (min_frames, extra) in enumerate(points):
        data = tmp_path / f"run{i}"
        proc = subprocess.Popen(
            _ingest(vtest_path, data, cfg),
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        at = _wait_then(proc, data, min_frames, extra)
        assert proc.poll() is None, f"kill point {i} came after the run had ended"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        assert proc.returncode == -signal.SIGKILL
        # The kill landed mid-run: the run is not complete and (after start-up) some but not
        # all of the frames were committed, so the resume has real work left.
        assert _run_status(data) != "complete", f"kill point {i}: the run had finished"
        if _run_status(data) is not None:  # its owner is gone: shown interrupted, not running
            with Gallery(f"sqlite:///{data / 'gallery.db'}", data, must_exist=True) as g:
                assert [r.status for r, _v in g.runs()] == ["interrupted"], i
        committed = _committed_frames(data)
        if min_frames:
            assert min_frames <= committed < FRAMES, (i, committed)
        resumed = subprocess.run(
            _ingest(vtest_path, data, cfg), cwd=ROOT, capture_output=True, text=True, timeout=600
        )
        assert resumed.returncode == 0, resumed.stderr
        rows = _rows(data)
        _same_detections(rows, reference[0])
        _same_tracks(data, reference[1])
        assert len(set(rows)) == len(rows), "duplicated detections after resume"
        index_file = next((data / "index").glob("*.faiss"))
        saved = VectorIndex.load(index_file, 192)
        assert sorted(saved.ids().tolist()) == _ids(data), "index on disk disagrees with rows"
        survived.append(at)
    assert all(0 < a < FRAMES for a in survived[1:]), survived


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_two_ingests_of_one_run_at_once_store_each_frame_once(
    backend, reference, vtest_path, tmp_path, request
) -> None:  # type: ignore[no-untyped-def]
    """Two `prowl ingest` of the same video and settings started together over a run stopped
    at frame 50: one resumes it, the other refuses in one line (or finds it done); no frame
    is stored twice, and the rows are those of one uninterrupted run."""
    from storage.gallery import wipe

    cfg = _cfg(tmp_path)
    data = tmp_path / "data"
    db: list[str] = []
    if backend == "postgresql":
        url = request.getfixturevalue("pg_database")
        wipe(url)
        db = ["--db", url]
    first = subprocess.run(
        [*_ingest(vtest_path, data, cfg, *db), "--end", "5"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert first.returncode == 0, first.stderr
    procs = [
        subprocess.Popen(
            _ingest(vtest_path, data, cfg, *db),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outcomes = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        outcomes.append((p.returncode, out, err))
    resumed = [o for o in outcomes if o[0] == 0 and "resumed at frame 50" in o[1]]
    assert len(resumed) == 1, outcomes
    other = next(o for o in outcomes if o is not resumed[0])
    refused = other[0] == 2 and "another prowl process" in other[2]
    assert refused or (other[0] == 0 and "already ingested" in other[1]), other
    if refused:
        assert len(other[2].strip().splitlines()) == 1, other[2]
    if backend == "sqlite":
        rows = _rows(data)
    else:
        from sqlalchemy import create_engine, text

        engine = create_engine(url)
        with engine.connect() as conn:
            rows = sorted(
                tuple(r)
                for r in conn.execute(text("SELECT frame_index, x1, y1, x2, y2 FROM detections"))
            )
        engine.dispose()
        wipe(url)
    assert len(set(rows)) == len(rows), "a frame was stored twice"
    _same_detections(rows, reference[0])


def test_sigint_commits_and_says_how_to_resume(reference, vtest_path, tmp_path) -> None:  # type: ignore[no-untyped-def]
    data, cfg = tmp_path / "data", _cfg(tmp_path)
    proc = subprocess.Popen(
        _ingest(vtest_path, data, cfg),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_then(proc, data, 8, 0.0)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "resume" in err and "Traceback" not in err
    committed = _committed_frames(data)
    assert 8 <= committed < FRAMES
    index_file = next((data / "index").glob("*.faiss"))
    assert sorted(VectorIndex.load(index_file, 192).ids().tolist()) == _ids(data)  # index written
    # Until it is resumed, the gallery says the video is incomplete, and shows the tracks of
    # the part that is stored.
    listed = _cli("tracks", "vtest.avi", "--data-dir", str(data))
    assert listed.returncode == 0 and "is incomplete" in listed.stderr
    assert f"up to frame {committed} of 795" in listed.stderr
    assert int(listed.stdout.strip().splitlines()[-1].split()[0]) >= 3  # "N tracks"

    again = subprocess.run(
        _ingest(vtest_path, data, cfg), cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert again.returncode == 0 and f"resumed at frame {committed}" in again.stdout
    _same_detections(_rows(data), reference[0])
    _same_tracks(data, reference[1])
    noop = subprocess.run(
        _ingest(vtest_path, data, cfg), cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert noop.returncode == 0 and "already ingested" in noop.stdout
    forced = subprocess.run(
        _ingest(vtest_path, data, cfg, "--force"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert forced.returncode == 0
    _same_detections(_rows(data), reference[0])  # replaced, never doubled
    _same_tracks(data, reference[1])


def test_queries_during_ingest_see_only_committed_rows(vtest_path, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from storage.gallery import Gallery

    data, cfg = tmp_path / "data", _cfg(tmp_path)
    proc = subprocess.Popen(
        _ingest(vtest_path, data, cfg),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_then(proc, data, 1, 0.0)
    rng = np.random.default_rng(0)
    seen, queries = [], 0
    while proc.poll() is None:
        gallery = Gallery(f"sqlite:///{data / 'gallery.db'}", data, must_exist=True)
        emb = gallery.embedder_for_query(None)
        q = rng.random(192).astype(np.float32)
        hits = gallery.search(emb.id, q / np.linalg.norm(q), k=50)
        assert hits and all(h.thumbnail for h in hits)  # every hit is a committed, whole row
        seen.append(gallery.stats()["detections"])
        gallery.engine.dispose()  # no index save from a reader
        queries += 1
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    assert queries >= 2 and seen == sorted(seen)


@pytest.mark.postgres
def test_two_ingests_into_one_postgres_gallery(vtest_path, tmp_path, pg_database) -> None:  # type: ignore[no-untyped-def]
    import cv2

    from storage.gallery import Gallery, wipe

    wipe(pg_database)
    other = tmp_path / "other-camera.avi"  # a second, different video: vtest frames 200-399
    cap = cv2.VideoCapture(str(vtest_path))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 200)
    writer = cv2.VideoWriter(str(other), cv2.VideoWriter_fourcc(*"MJPG"), 10, (768, 576))
    for _ in range(FRAMES):
        ok, img = cap.read()
        assert ok
        writer.write(img)
    writer.release()
    cfg = _cfg(tmp_path)
    procs = [
        subprocess.Popen(
            _ingest(v, tmp_path / "data", cfg, "--db", pg_database),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for v in (vtest_path, other)
    ]
    for p in procs:
        _out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
    g = Gallery(pg_database, tmp_path / "data", must_exist=True)
    stats = g.stats()
    assert len(stats["videos"]) == 2
    assert all(
        v["runs"] == ["complete"] and v["frames_processed"] == FRAMES and v["detections"] > 0
        for v in stats["videos"]
    )
    # The two writers each saved the index they knew; opening reconciles it with all rows.
    assert stats["embedders"][0]["index_size"] == stats["embedders"][0]["embedded"] > 0
    g.close()
    wipe(pg_database)


def _cli(*argv: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "run_pipeline.py", *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_corrupt_and_odd_inputs(vtest_path, tmp_path) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "data"
    raw = vtest_path.read_bytes()
    truncated = tmp_path / "truncated.avi"
    truncated.write_bytes(raw[: len(raw) * 2 // 5])
    r = _cli(
        "ingest", str(truncated), "--reid", "hsv", "--stride", "10", "--data-dir", str(data), "-q"
    )
    assert r.returncode == 2 and "decoding stopped" in r.stderr and "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1, r.stderr  # prowl's line only, no decoder chatter
    with sqlite3.connect(data / "gallery.db") as db:
        kept = db.execute("SELECT count(*), max(frame_index) FROM detections").fetchone()
    assert kept[0] > 0 and 100 < kept[1] < 795  # what decoded is stored, the rest reported

    flipped = bytearray(raw)
    rnd = random.Random(7)
    for pos in rnd.sample(range(len(raw) // 10, len(raw)), 400):
        flipped[pos] ^= 0xFF
    flipped_path = tmp_path / "flipped.avi"
    flipped_path.write_bytes(bytes(flipped))
    r = _cli(
        "ingest",
        str(flipped_path),
        "--reid",
        "hsv",
        "--stride",
        "20",
        "--data-dir",
        str(data),
        "-q",
    )
    assert r.returncode in (0, 2) and "Traceback" not in r.stderr, r.stderr
    assert "people detected" in r.stdout

    header = bytearray(raw)
    header[:4096] = bytes(4096)
    bad_header = tmp_path / "header.avi"
    bad_header.write_bytes(bytes(header))
    empty_dir = tmp_path / "no-images"
    empty_dir.mkdir()
    (empty_dir / "readme.txt").write_text("x")
    not_mp4 = tmp_path / "notavideo.mp4"  # FFmpeg's mp4 demuxer complains: "moov atom not found"
    not_mp4.write_bytes(random.Random(3).randbytes(5000))
    for path, needle in [
        (not_mp4, "not a video"),
        (bad_header, "not a video"),
        (empty_dir, "no images"),
        (tmp_path / "gone.avi", "no such file"),
    ]:
        r = _cli("ingest", str(path), "--data-dir", str(data))
        assert r.returncode == 2 and needle in r.stderr and r.stderr.count("\n") == 1, r.stderr
    with sqlite3.connect(data / "gallery.db") as db:
        assert (
            db.execute("SELECT count(*) FROM detections").fetchone()[0] >= kept[0]
        )  # nothing lost

    r = _cli(
        "ingest",
        str(vtest_path),
        "--db",
        "postgresql+psycopg://nobody@127.0.0.1:1/x",
        "--data-dir",
        str(data),
    )
    assert r.returncode == 2 and "cannot open database" in r.stderr and r.stderr.count("\n") == 1


def test_frames_with_no_people_are_recorded_not_failed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import write_video

    video = write_video(tmp_path / "empty-corridor.avi", frames=12, size_wh=(320, 240))
    r = _cli("ingest", str(video), "--reid", "hsv", "--data-dir", str(tmp_path / "d"), "-q")
    assert r.returncode == 0 and "no people found" in r.stderr
    assert "12 processed, 0 people detected" in r.stdout


@pytest.mark.skipif(
    os.geteuid() != 0 or sys.platform != "linux", reason="needs root to mount a tmpfs"
)
def test_full_and_read_only_data_directory(vtest_path, tmp_path) -> None:  # type: ignore[no-untyped-def]
    full, ro = tmp_path / "full", tmp_path / "ro"
    full.mkdir()
    ro.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(full)]).returncode:
        pytest.skip("tmpfs mounts are not permitted here")
    try:
        r = _cli(
            "ingest", str(vtest_path), "--reid", "hsv", "--end", "8", "--data-dir", str(full), "-q"
        )
        assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
        assert r.stderr.startswith("prowl: error:") and "full" in r.stderr
    finally:
        subprocess.run(["umount", str(full)])
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=100k", "tmpfs", str(ro)]).returncode:
        pytest.skip("read-only tmpfs mounts are not permitted here")
    try:
        r = _cli("ingest", str(vtest_path), "--reid", "hsv", "--data-dir", str(ro / "gallery"))
        assert r.returncode == 2 and "data directory" in r.stderr and r.stderr.count("\n") == 1
    finally:
        subprocess.run(["umount", str(ro)])


@pytest.mark.skipif(
    os.geteuid() != 0 or sys.platform != "linux", reason="needs root to mount a tmpfs"
)
def test_disk_full_mid_ingest_is_one_line_and_resumes_to_the_same_gallery(
    reference, vtest_path, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    data, cfg = tmp_path / "small", _cfg(tmp_path)
    data.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=700k", "tmpfs", str(data)]).returncode:
        pytest.skip("tmpfs mounts are not permitted here")
    try:
        r = subprocess.run(
            _ingest(vtest_path, data, cfg), cwd=ROOT, capture_output=True, text=True, timeout=600
        )
        assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr  # was 85 lines
        assert "full" in r.stderr and "free space" in r.stderr and "resume" in r.stderr
        assert 0 < _committed_frames(data) < FRAMES  # it filled up mid-run
        subprocess.run(["mount", "-o", "remount,size=64m", str(data)], check=True)
        again = subprocess.run(
            _ingest(vtest_path, data, cfg), cwd=ROOT, capture_output=True, text=True, timeout=600
        )
        assert again.returncode == 0, again.stderr
        _same_detections(_rows(data), reference[0])
        _same_tracks(data, reference[1])
    finally:
        subprocess.run(["umount", "-l", str(data)])  # lazy: a test's sqlite handle may linger
