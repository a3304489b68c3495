"""Shared fixtures. Data is generated in tmp_path; real footage and weights come through the
project's asset resolver (cached under $PROWL_CACHE or ~/.cache/prowl)."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

PG_ADMIN_URL = os.environ.get(
    "PROWL_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def write_video(
    path: Path, frames: int = 30, fps: float = 10.0, size_wh: tuple[int, int] = (96, 64)
) -> Path:
    """An MJPG AVI whose frame i is uniformly grey with value (i * 5) % 200 plus a white
    marker column at x = i, so a frame's index can be read back from its pixels."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size_wh)
    assert writer.isOpened()
    for i in range(frames):
        img = np.full((size_wh[1], size_wh[0], 3), (i * 5) % 200, np.uint8)
        img[:, i % size_wh[0]] = 255
        writer.write(img)
    writer.release()
    return path


@pytest.fixture(scope="session")
def vtest_path() -> Path:
    from pipeline.core.assets import resolve

    return resolve("vtest.avi")


@pytest.fixture(scope="session")
def cfg_default():  # type: ignore[no-untyped-def]
    from pipeline.core.config import load_config

    return load_config()


@pytest.fixture(scope="session")
def yolo(cfg_default):  # type: ignore[no-untyped-def]
    from detectors import build_detector

    return build_detector(cfg_default.detector)


@pytest.fixture(scope="session")
def default_embedder(cfg_default):  # type: ignore[no-untyped-def]
    from reid import build_embedder

    return build_embedder(cfg_default.reid)


@pytest.fixture(
    scope="session", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def vtest_gallery(request, cfg_default, yolo, default_embedder, vtest_path, tmp_path_factory):  # type: ignore[no-untyped-def]
    """vtest.avi frames 0-100 ingested with the real YOLOv8n + the default embedder, tracked, into
    SQLite and (second parameter) into a fresh database on the PostgreSQL server.
    Returns (cfg, gallery, summary, data_dir); ``where(cfg, data_dir)`` gives the CLI flags.
    Tests must not modify it."""
    from dataclasses import replace

    from pipeline.context import Models, RunContext
    from pipeline.ingest import ingest_video
    from storage.gallery import Gallery

    # every detection embedded (cadence 1): per-detection retrieval is tested on its own
    cfg = replace(
        cfg_default,
        video=replace(cfg_default.video, end_s=10.05),  # [0, 10.05 s): frames 0-100
        tracking=replace(cfg_default.tracking, embed_every_frames=1, appearance_every_frames=1),
    )
    data_dir = tmp_path_factory.mktemp(f"vtest-gallery-{request.param}")
    with contextlib.ExitStack() as stack:
        db = stack.enter_context(fresh_pg_database()) if request.param == "postgresql" else None
        cfg = replace(cfg, data_dir=data_dir, db=db)
        gallery = Gallery(cfg.db_url, data_dir)
        summary = ingest_video(
            RunContext(cfg, gallery, Models(yolo, default_embedder)), vtest_path, camera_id="campus"
        )
        gallery.save_indexes()
        yield cfg, gallery, summary, data_dir
        gallery.close()


@pytest.fixture(scope="session")
def two_cameras(cfg_default, yolo, default_embedder, vtest_path, tmp_path_factory):  # type: ignore[no-untyped-def]
    """The demo's two cameras on one time axis, first 12 s of each: ``campus`` (vtest.avi,
    starting at pipeline.demo.DEMO_START) and ``campus-b`` (a mirrored, recoloured copy
    starting 30 s later). Returns (cfg, gallery, data_dir). Tests leave its rows as they found
    them (the browser walk saves a subject and deletes it again)."""
    from dataclasses import replace

    from pipeline.context import Models, RunContext
    from pipeline.demo import DEMO_START, SECOND_DELAY_S, second_camera, shifted
    from pipeline.ingest import ingest_video
    from storage.gallery import Gallery

    data_dir = tmp_path_factory.mktemp("two-cameras")
    other = second_camera(vtest_path, data_dir / "camera-b.avi", end_s=12.0)
    cfg = replace(cfg_default, data_dir=data_dir, db=None)
    with Gallery(cfg.db_url, data_dir) as gallery:
        models = Models(yolo, default_embedder)
        for path, camera, start in (
            (vtest_path, "campus", DEMO_START),
            (other, "campus-b", shifted(DEMO_START, SECOND_DELAY_S)),
        ):
            run_cfg = replace(cfg, video=replace(cfg.video, end_s=12.0, start_time=start))
            ingest_video(RunContext(run_cfg, gallery, models), path, camera_id=camera)
        gallery.save_indexes()
        yield cfg, gallery, data_dir


def longest_appearance(gallery, camera: str):  # type: ignore[no-untyped-def]
    """(track row, its embedded sightings by frame) of the longest appearance on ``camera``."""
    from sqlalchemy import select

    from storage.models import DetectionRow, TrackRow, VideoRow

    with gallery.session() as s:
        track = s.scalars(
            select(TrackRow)
            .join(VideoRow, VideoRow.id == TrackRow.video_id)
            .where(VideoRow.camera_id == camera)
            .order_by(TrackRow.detections.desc())
        ).first()
        rows = list(
            s.scalars(
                select(DetectionRow)
                .where(DetectionRow.track_id == track.id, DetectionRow.embedding.is_not(None))
                .order_by(DetectionRow.frame_index)
            )
        )
        return track, rows


def where(cfg, data_dir: Path) -> list[str]:  # type: ignore[no-untyped-def]
    """CLI flags that open the same gallery as ``cfg``."""
    return ["--data-dir", str(data_dir)] + (["--db", cfg.db] if cfg.db else [])


def _pg_available() -> bool:
    from sqlalchemy import create_engine, text

    try:
        engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:
        return False


@contextlib.contextmanager
def fresh_pg_database() -> Iterator[str]:
    """A new PostgreSQL database, dropped afterwards."""
    from sqlalchemy import create_engine, text

    if not _pg_available():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL}; start it (see README)")
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    name = f"prowl_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session's storage tests."""
    with fresh_pg_database() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each storage test runs against SQLite and against the real PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'gallery.db'}"
        return
    url = request.getfixturevalue("pg_database")
    from storage.gallery import wipe

    wipe(url)
    yield url
    wipe(url)


@pytest.fixture(scope="module")
def served(vtest_gallery) -> Iterator[tuple[str, object]]:  # type: ignore[no-untyped-def]
    """`prowl serve`'s app over the vtest gallery on a free loopback port: (url, gallery)."""
    from cli.web import create_app
    from tests.test_serve import serving

    _cfg, gallery, _summary, _data = vtest_gallery
    with serving(create_app(gallery)) as url:
        yield url, gallery
