"""Distributed ingest on Ray over PostgreSQL, for real: a local Ray instance and a two-node
cluster on loopback, the real detector and embedder, vtest.avi cut into segments. The rows
must be those of an in-process ingest of the same video and settings, a worker killed
mid-segment must cost nothing, and a re-run must be a no-op."""

from __future__ import annotations

import collections
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pipeline.segments import plan_segments
from tests.conftest import fresh_pg_database

END_S = 12.0  # frames 0-119 of vtest.avi ...
SEGMENT_S = 3.5  # ... in 4 segments, so 3 cuts for tracks to cross


def test_segments_cover_the_gaps_once_with_lead_in() -> None:
    segs = plan_segments("v", 1, [(0, 95), (120, 130)], fps=10, segment_s=3, overlap_s=1)
    assert [(s.first, s.stop, s.lead_in) for s in segs] == [
        (0, 30, 0),
        (30, 60, 20),
        (60, 90, 50),
        (90, 95, 80),
        (120, 130, 110),
    ]


def _rows(gallery: Any) -> list[tuple[int, int, int, int, int, int | None, bool]]:
    from sqlalchemy import select

    from storage.models import DetectionRow

    with gallery.session() as s:
        return [
            (
                r.frame_index,
                round(r.x1),
                round(r.y1),
                round(r.x2),
                round(r.y2),
                r.track_id,
                r.embedding is not None,
            )
            for r in s.scalars(select(DetectionRow))
        ]


@pytest.fixture(scope="module")
def reference(cfg_default, yolo, default_embedder, vtest_path, tmp_path_factory):  # type: ignore[no-untyped-def]
    """The in-process ingest of vtest.avi [0, END_S) that every Ray run must equal."""
    from pipeline.context import Models, RunContext
    from pipeline.ingest import ingest_video
    from storage.gallery import Gallery

    cfg = replace(
        cfg_default,
        data_dir=tmp_path_factory.mktemp("inprocess"),
        video=replace(cfg_default.video, end_s=END_S),
        executor=replace(cfg_default.executor, name="ray", segment_s=SEGMENT_S, workers=2),
    )
    with Gallery(cfg.db_url, cfg.data_dir) as g:
        summary = ingest_video(
            RunContext(cfg, g, Models(yolo, default_embedder)), vtest_path, camera_id="campus"
        )
        return cfg, summary, _rows(g)


@pytest.fixture
def local_ray() -> Iterator[Any]:
    ray = pytest.importorskip("ray")
    from pipeline.distributed import connect

    connect(None, num_cpus=2)
    yield ray
    ray.shutdown()


def _same_rows(reference_rows: list[Any], rows: list[Any]) -> None:
    boxes = collections.Counter(r[:5] for r in reference_rows)
    got = collections.Counter(r[:5] for r in rows)
    assert got == boxes, (sum((boxes - got).values()), sum((got - boxes).values()))


def _crossing(rows: list[Any]) -> int:
    """How many stored tracks run across a segment cut (joined from two segments' trackers)."""
    cut_every = round(SEGMENT_S * 10)
    frames: dict[int, list[int]] = collections.defaultdict(list)
    for r in rows:
        if r[5] is not None:
            frames[r[5]].append(r[0])
    cuts = range(cut_every, 10_000, cut_every)
    return sum(any(min(f) < c <= max(f) for c in cuts) for f in frames.values())


PETS_GT = Path(__file__).resolve().parents[3] / "shared/data/real-mot/PETS09-S2L1/gt/gt.txt"


def _idf1(rows: list[Any]) -> float:
    """IDF1 of the stored tracks against vtest.avi's published ground truth (it is
    PETS09-S2L1), over the frames stored."""
    import motmetrics as mm
    import numpy as np

    from pipeline.core.boxes import iou_matrix

    gt = np.loadtxt(PETS_GT, delimiter=",")
    acc = mm.MOTAccumulator(auto_id=True)
    by_frame: dict[int, list[Any]] = collections.defaultdict(list)
    for r in rows:
        if r[5] is not None:
            by_frame[r[0]].append(r)
    for f in range(max(r[0] for r in rows) + 1):
        g = gt[gt[:, 0] == f + 1]
        truth = np.c_[g[:, 2], g[:, 3], g[:, 2] + g[:, 4], g[:, 3] + g[:, 5]]
        hyp = np.asarray([r[1:5] for r in by_frame[f]], float).reshape(-1, 4)
        dist = 1.0 - iou_matrix(truth, hyp)
        dist[dist > 0.5] = np.nan
        acc.update(g[:, 1].astype(int).tolist(), [r[5] for r in by_frame[f]], dist)
    summary = mm.metrics.create().compute(acc, metrics=["idf1"])
    return float(summary["idf1"].iloc[0])


@pytest.mark.slow
@pytest.mark.postgres
def test_ray_ingest_equals_in_process_and_reruns_are_no_ops(
    reference, local_ray, yolo, default_embedder, vtest_path, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from pipeline.context import Models, RunContext
    from pipeline.distributed import ingest_distributed
    from storage.gallery import Gallery

    cfg, ref_summary, ref_rows = reference
    with fresh_pg_database() as db:
        cfg = replace(cfg, db=db, data_dir=tmp_path)
        with Gallery(cfg.db_url, tmp_path) as g:
            s = ingest_distributed(
                RunContext(cfg, g, Models(yolo, default_embedder)), vtest_path, camera_id="campus"
            )
            assert (s.status, s.segments, s.workers) == ("complete", 4, 2)
            assert s.frames_new == ref_summary.frames_new == 120
            rows = _rows(g)
            _same_rows(ref_rows, rows)
            # Each segment's tracker starts afresh in its lead-in, so the tracks are not the
            # in-process ones box for box; they must be as good against the ground truth,
            # with people followed across the cuts.
            assert _crossing(rows) >= 3
            assert _idf1(rows) >= _idf1(ref_rows) - 0.03
            assert abs(s.tracks - ref_summary.tracks) <= 2
            hits = g.search(1, g.index_for(1).reconstruct(next(iter(g.index_for(1).ids()))), 3)
            assert hits[0].similarity > 0.99  # the index holds the workers' vectors
            again = ingest_distributed(
                RunContext(cfg, g, Models(yolo, default_embedder)), vtest_path, camera_id="campus"
            )
            assert again.status == "skipped" and _rows(g) == rows


@pytest.mark.slow
@pytest.mark.postgres
def test_a_run_held_by_another_ingest_is_not_written_by_ray(
    reference, local_ray, yolo, default_embedder, vtest_path, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """The run's lease covers Ray too: while another ingest holds the run, a Ray ingest of
    the same video and settings refuses before any segment runs."""
    from pipeline.context import Models, RunContext
    from pipeline.distributed import ingest_distributed
    from pipeline.runs import prepare_run
    from storage.gallery import Gallery
    from storage.leases import RunBusy

    cfg, _ref_summary, _ref_rows = reference
    with fresh_pg_database() as db:
        cfg = replace(cfg, db=db, data_dir=tmp_path)
        with Gallery(cfg.db_url, tmp_path) as g:
            held = prepare_run(
                RunContext(cfg, g, Models(yolo, default_embedder)), vtest_path, "campus"
            )
            try:
                with pytest.raises(RunBusy, match="another prowl process"):
                    ingest_distributed(
                        RunContext(cfg, g, Models(yolo, default_embedder)),
                        vtest_path,
                        camera_id="campus",
                    )
                assert _rows(g) == []
            finally:
                held.release()


@pytest.mark.slow
@pytest.mark.postgres
def test_a_worker_killed_mid_segment_costs_nothing(
    reference, local_ray, yolo, default_embedder, vtest_path, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from pipeline.context import Models, RunContext
    from pipeline.distributed import ingest_distributed
    from storage.gallery import Gallery

    cfg, _ref_summary, ref_rows = reference
    killed: list[int] = []

    def kill_once(report: dict[str, Any], _actors: list[Any]) -> None:
        if not killed:  # the actor that reported has just started its next segment
            os.kill(report["pid"], signal.SIGKILL)
            killed.append(report["pid"])

    with fresh_pg_database() as db:
        cfg = replace(cfg, db=db, data_dir=tmp_path)
        with Gallery(cfg.db_url, tmp_path) as g:
            s = ingest_distributed(
                RunContext(cfg, g, Models(yolo, default_embedder)),
                vtest_path,
                camera_id="campus",
                on_segment=kill_once,
            )
            assert killed and s.status == "complete"
            rows = _rows(g)
            _same_rows(ref_rows, rows)  # nothing lost, nothing twice
            assert len(rows) == len(set(r[:5] for r in rows))


@pytest.mark.postgres
def test_a_segment_commits_once(tmp_path: Path) -> None:
    """A retried segment whose first attempt did commit (its worker died after the commit)
    writes nothing the second time."""
    import numpy as np

    from storage.gallery import Gallery, NewDetection
    from storage.segments import commit_segment

    with fresh_pg_database() as db, Gallery(db, tmp_path) as g:
        emb = g.embedder_row("fake", 4)
        video = g.upsert_video(Path("/f/a.avi"), "h", "cam", 10.0, 64, 64, 100)
        run = g.start_run(video, emb, "det", "key", 1)
        dets = [
            NewDetection(f, f / 10, (0.0, 0.0, 8.0, 20.0), 0.9, np.ones(4, np.float32) / 2, b"j", 1)
            for f in range(10, 20)
        ]
        assert commit_segment(g, run.id, 10, 20, 10, dets, 1, {}) is True
        assert commit_segment(g, run.id, 10, 20, 10, dets, 1, {}) is False
        fresh = g.find_run(video.id, "key")
        assert fresh is not None and fresh.detections_count == 10 and fresh.frames_processed == 10
        assert fresh.done_ranges == "[[10, 20]]"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
@pytest.mark.postgres
def test_two_node_cluster_on_loopback_through_the_cli(reference, vtest_path, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`ray start --head` and a second `ray start --address` node, then `prowl ingest
    --executor ray --ray-address`: the same rows, with work done on both nodes."""
    pytest.importorskip("ray")
    from storage.gallery import Gallery

    ray_cli = str(Path(sys.executable).with_name("ray"))
    _cfg, _ref_summary, ref_rows = reference
    port = _free_port()
    # a cluster's nodes and its driver share one token (Ray's token authentication)
    env = dict(
        os.environ,
        RAY_USAGE_STATS_ENABLED="0",
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN=secrets.token_hex(32),
    )
    common = ["--num-cpus", "1", "--object-store-memory", str(100 << 20), "--disable-usage-stats"]
    head = [ray_cli, "start", "--head", "--port", str(port), "--node-ip-address", "127.0.0.1"]
    worker = [ray_cli, "start", "--address", f"127.0.0.1:{port}", "--node-ip-address", "127.0.0.1"]
    try:
        subprocess.run(
            [*head, "--include-dashboard", "false", *common],
            check=True,
            env=env,
            capture_output=True,
            timeout=120,
        )
        subprocess.run([*worker, *common], check=True, env=env, capture_output=True, timeout=120)
        with fresh_pg_database() as db:
            argv = [
                sys.executable,
                "-m",
                "run_pipeline",
                "ingest",
                str(vtest_path),
                "--camera",
                "campus",
            ]
            argv += ["--end", str(END_S), "--db", db, "--data-dir", str(tmp_path), "-q"]
            argv += ["--executor", "ray", "--ray-address", f"127.0.0.1:{port}", "--workers", "2"]
            config = tmp_path / "seg.yaml"
            config.write_text(f"executor:\n  segment_s: {SEGMENT_S}\n")
            done = subprocess.run(
                [*argv, "--config", str(config)],
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert done.returncode == 0, done.stderr[-2000:]
            assert "120 processed" in done.stdout, done.stdout
            assert "4 segments on 2 workers on 2 nodes" in done.stdout, done.stdout
            with Gallery(db, tmp_path, must_exist=True) as g:
                _same_rows(ref_rows, _rows(g))
    finally:
        subprocess.run([ray_cli, "stop", "--force"], env=env, capture_output=True, timeout=120)


def test_bad_executor_settings_say_so_in_one_line(tmp_path: Path, capsys, vtest_path) -> None:  # type: ignore[no-untyped-def]
    from cli import main

    base = ["ingest", str(vtest_path), "--end", "1", "--executor", "ray"]
    assert main([*base, "--data-dir", str(tmp_path / "sqlite")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--db postgresql" in err[0], err
    assert not (tmp_path / "sqlite" / "gallery.db").exists()
    if shutil.which("true") is None or pytest.importorskip("ray") is None:
        return
    port = _free_port()  # nothing listens there
    with fresh_pg_database() as db:
        argv = [*base, "--db", db, "--ray-address", f"127.0.0.1:{port}"]
        assert main([*argv, "--data-dir", str(tmp_path / "pg")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"cannot reach a Ray cluster at 127.0.0.1:{port}" in err[0], err
        from sqlalchemy import create_engine, inspect

        assert not inspect(create_engine(db)).get_table_names()  # nothing stored
