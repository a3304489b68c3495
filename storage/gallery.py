"""The gallery: SQL rows (the truth) plus one FAISS index per embedder (a cache).

Write order is always: database transaction commits, then the vectors go into the index,
and the index file is saved atomically at the end of a run (and on a graceful stop). When a
gallery is opened for search, each index is compared with the rows and repaired: vectors
missing from the index are added from the rows, vectors without a row are dropped.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Engine, create_engine, delete, event, func, insert, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from pipeline.errors import GalleryError
from storage.index import VectorIndex
from storage.models import Base, DetectionRow, EmbedderRow, RunRow, TrackRow, VideoRow
from storage.search import GalleryReads, Hit, SearchFilters, _safe_url

__all__ = ["Gallery", "Hit", "NewDetection", "SearchFilters", "wipe"]

log = logging.getLogger(__name__)

_CHUNK = 5000
_SCHEMA_LOCK = 0x70726F776C  # 'prowl'


@dataclass(frozen=True)
class NewDetection:
    frame_index: int
    timestamp_s: float
    xyxy: tuple[float, float, float, float]
    score: float
    embedding: NDArray[np.float32] | None  # None: the tracking cadence skipped this crop
    thumbnail: bytes
    track_id: int | None = None


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers never block the writer, and vice versa
    cur.execute("PRAGMA synchronous=NORMAL")  # durable at each WAL checkpoint; safe with WAL
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _index_key(url: str) -> str:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return Path(parsed.database or "memory").stem
    readable = re.sub(r"[^A-Za-z0-9]+", "_", f"{parsed.host}_{parsed.port}_{parsed.database}")
    digest = hashlib.sha1(_safe_url(url).encode()).hexdigest()[:8]
    return f"{parsed.get_backend_name()}_{readable}_{digest}"


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


class Gallery(GalleryReads):
    """Open (and, unless ``must_exist``, create) the gallery at ``url``; FAISS index files
    live under ``data_dir/index``."""

    def __init__(self, url: str, data_dir: Path, *, must_exist: bool = False) -> None:
        self.url = url
        self.data_dir = Path(data_dir)
        self._indexes: dict[int, VectorIndex] = {}
        self._dirty: set[int] = set()
        try:
            parsed = make_url(url)
        except Exception:
            raise GalleryError(
                f"'{url}' is not a database URL; use sqlite:///FILE or "
                "postgresql+psycopg://USER@HOST:PORT/DB"
            ) from None
        self.backend = parsed.get_backend_name()
        if self.backend == "sqlite" and parsed.database:
            db_file = Path(parsed.database)
            if must_exist and not db_file.is_file():
                raise GalleryError(
                    f"no gallery at {db_file}; run `prowl ingest VIDEO` first "
                    "or pass --data-dir/--db of an existing gallery"
                )
            self._ensure_writable_dir(db_file.parent, read_only_ok=must_exist)
        if not must_exist:
            self._ensure_writable_dir(self.data_dir, read_only_ok=False)
        try:
            connect_args: dict[str, Any] = {}
            if self.backend == "postgresql":
                connect_args["connect_timeout"] = 5
            self.engine: Engine = create_engine(url, connect_args=connect_args)
        except Exception as exc:
            raise GalleryError(
                f"cannot use database URL {_safe_url(url)}: {exc}".splitlines()[0]
            ) from None
        if self.backend == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        try:
            if not must_exist:
                with self.engine.begin() as conn:
                    if self.backend == "postgresql":
                        # Two ingests starting at once on a fresh database would both CREATE
                        # TABLE and one would fail: the lock makes the second wait and see them.
                        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK})")
                    Base.metadata.create_all(conn)
            else:
                with self.engine.connect() as conn:
                    conn.exec_driver_sql("SELECT 1")
        except OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise GalleryError(
                f"cannot open database {_safe_url(url)}: {reason}; "
                "check the URL and that the server is running"
            ) from None
        if must_exist and not self._has_tables():
            raise GalleryError(
                f"database {_safe_url(url)} holds no prowl gallery; "
                "run `prowl ingest VIDEO` with this --db first"
            )

    @staticmethod
    def _ensure_writable_dir(path: Path, read_only_ok: bool) -> None:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise GalleryError(
                f"cannot create data directory {path}: {exc.strerror}; choose a writable --data-dir"
            ) from None
        if not read_only_ok and not os.access(path, os.W_OK):
            raise GalleryError(f"data directory {path} is read-only; choose a writable --data-dir")

    def _has_tables(self) -> bool:
        from sqlalchemy import inspect

        return inspect(self.engine).has_table("detections")

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def close(self) -> None:
        self.save_indexes()
        self.engine.dispose()

    # ---------------------------------------------------------------- embedders and videos
    def embedder_row(self, name: str, dim: int) -> EmbedderRow:
        """Get or create; safe when two ingests start at once (the loser re-reads)."""
        row: EmbedderRow | None = None
        for _attempt in range(2):
            try:
                with self.session() as s, s.begin():
                    row = s.scalar(select(EmbedderRow).where(EmbedderRow.name == name))
                    if row is None:
                        row = EmbedderRow(name=name, dim=dim)
                        s.add(row)
                        s.flush()
                break
            except IntegrityError:
                continue
        if row is None:
            raise GalleryError(f"could not register embedder '{name}'; run the command again")
        if row.dim != dim:
            raise GalleryError(
                f"gallery holds embedder '{name}' with dimension {row.dim}, "
                f"not {dim}; use another --data-dir/--db for this model"
            )
        return row

    def embedders(self) -> list[EmbedderRow]:
        with self.session() as s:
            return list(s.scalars(select(EmbedderRow).order_by(EmbedderRow.id)))

    def embedder_for_query(self, requested: str | None) -> EmbedderRow:
        """The embedder whose vectors a query searches: read from the gallery, never guessed."""
        with self.session() as s:
            rows = list(
                s.execute(
                    select(EmbedderRow, func.count(DetectionRow.id))
                    .join(DetectionRow, DetectionRow.embedder_id == EmbedderRow.id, isouter=True)
                    .group_by(EmbedderRow.id)
                    .order_by(EmbedderRow.id)
                ).all()
            )
        filled = [(e, n) for e, n in rows if n > 0]
        if not filled:
            raise GalleryError("the gallery is empty; run `prowl ingest VIDEO` first")
        if requested is not None:
            for e, _n in filled:
                if e.name == requested:
                    return e
            have = ", ".join(e.name for e, _ in filled)
            raise GalleryError(
                f"the gallery was built with {have}, not '{requested}'; "
                f"drop --reid or pass --reid {filled[0][0].name}"
            )
        if len(filled) > 1:
            names = ", ".join(e.name for e, _ in filled)
            raise GalleryError(
                f"the gallery holds several embedders ({names}); choose one with --reid"
            )
        return filled[0][0]

    def upsert_video(
        self,
        path: Path,
        content_hash: str,
        camera_id: str,
        fps: float,
        width_px: int,
        height_px: int,
        frame_count: int,
    ) -> VideoRow:
        for attempt in range(2):
            try:
                return self._upsert_video_once(
                    path, content_hash, camera_id, fps, width_px, height_px, frame_count
                )
            except IntegrityError:  # the same footage registered by a concurrent ingest
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _upsert_video_once(
        self, path: Path, content_hash: str, camera_id: str, *meta: Any
    ) -> VideoRow:
        fps, width_px, height_px, frame_count = meta
        with self.session() as s, s.begin():
            row = s.scalar(
                select(VideoRow).where(
                    VideoRow.content_hash == content_hash, VideoRow.camera_id == camera_id
                )
            )
            if row is None:
                row = VideoRow(
                    path=str(path),
                    content_hash=content_hash,
                    camera_id=camera_id,
                    fps=fps,
                    width_px=width_px,
                    height_px=height_px,
                    frame_count=frame_count,
                    size_bytes=_size_of(path),
                )
                s.add(row)
                s.flush()
            elif row.path != str(path):
                row.path = str(path)  # the same footage moved: keep its rows, follow the file
            return row

    # ---------------------------------------------------------------- ingest runs
    def find_run(self, video_id: int, settings_key: str) -> RunRow | None:
        with self.session() as s:
            return s.scalar(
                select(RunRow).where(
                    RunRow.video_id == video_id, RunRow.settings_key == settings_key
                )
            )

    def start_run(
        self, video: VideoRow, embedder: EmbedderRow, detector: str, settings_key: str, stride: int
    ) -> RunRow:
        with self.session() as s, s.begin():
            run = RunRow(
                video_id=video.id,
                embedder_id=embedder.id,
                detector=detector,
                settings_key=settings_key,
                stride=stride,
                status="running",
                next_frame=0,
                frames_processed=0,
                detections_count=0,
            )
            s.add(run)
            s.flush()
            return run

    def reset_run(self, run: RunRow) -> None:
        """Drop a run's detections (rows, then vectors) so it can be ingested again cleanly."""
        with self.session() as s, s.begin():
            ids = np.fromiter(
                s.scalars(select(DetectionRow.id).where(DetectionRow.run_id == run.id)),
                dtype=np.int64,
            )
            s.execute(delete(TrackRow).where(TrackRow.run_id == run.id))
            s.execute(delete(DetectionRow).where(DetectionRow.run_id == run.id))
            s.execute(
                update(RunRow)
                .where(RunRow.id == run.id)
                .values(
                    status="running",
                    next_frame=0,
                    frames_processed=0,
                    detections_count=0,
                    embedded_count=0,
                    next_track_id=1,
                    started_at=datetime.now(UTC),
                    finished_at=None,
                )
            )
        index = self._indexes.get(run.embedder_id)
        if index is not None and len(ids):
            index.remove(ids)
            self._dirty.add(run.embedder_id)
        run.status, run.next_frame, run.frames_processed, run.detections_count = "running", 0, 0, 0
        run.embedded_count, run.next_track_id = 0, 1

    def commit_frames(
        self,
        run: RunRow,
        detections: Sequence[NewDetection],
        next_frame: int,
        frames_processed: int,
        next_track_id: int | None = None,
    ) -> NDArray[np.int64]:
        """One transaction: the detections of whole frames plus the run's resume point. The
        vectors enter the index only after the commit. Returns the new primary keys."""
        rows = [
            {
                "run_id": run.id,
                "video_id": run.video_id,
                "embedder_id": run.embedder_id,
                "frame_index": d.frame_index,
                "timestamp_s": d.timestamp_s,
                "x1": d.xyxy[0],
                "y1": d.xyxy[1],
                "x2": d.xyxy[2],
                "y2": d.xyxy[3],
                "score": d.score,
                "track_id": d.track_id,
                "embedding": None
                if d.embedding is None
                else np.ascontiguousarray(d.embedding, np.float32).tobytes(),
                "thumbnail": d.thumbnail,
            }
            for d in detections
        ]
        # Load (and reconcile) the index before the rows exist, or they would be added twice.
        index = self.index_for(run.embedder_id)
        with self.session() as s, s.begin():
            ids: list[int] = []
            if rows:
                stmt = insert(DetectionRow).returning(DetectionRow.id, sort_by_parameter_order=True)
                ids = [r[0] for r in s.execute(stmt, rows)]
            n_embedded = sum(d.embedding is not None for d in detections)
            values: dict[str, Any] = {
                "next_frame": next_frame,
                "frames_processed": frames_processed,
                "detections_count": RunRow.detections_count + len(rows),
                "embedded_count": RunRow.embedded_count + n_embedded,
            }
            if next_track_id is not None:
                values["next_track_id"] = next_track_id
            s.execute(update(RunRow).where(RunRow.id == run.id).values(**values))
        id_arr = np.asarray(ids, dtype=np.int64)
        embedded = [k for k, d in enumerate(detections) if d.embedding is not None]
        if embedded:
            vecs = np.stack([detections[k].embedding for k in embedded]).astype(np.float32)  # type: ignore[misc]
            index.add(id_arr[embedded], vecs)
            self._dirty.add(run.embedder_id)
        run.next_frame = next_frame
        run.frames_processed = frames_processed
        run.detections_count += len(rows)
        run.embedded_count += len(embedded)
        if next_track_id is not None:
            run.next_track_id = next_track_id
        return id_arr

    def finish_run(self, run: RunRow) -> None:
        with self.session() as s, s.begin():
            s.execute(
                update(RunRow)
                .where(RunRow.id == run.id)
                .values(status="complete", finished_at=datetime.now(UTC))
            )
        run.status = "complete"
        from storage.tracks import rebuild_tracks

        rebuild_tracks(self, run)
        self.save_indexes()

    # ---------------------------------------------------------------- the index
    def index_path(self, embedder_name: str) -> Path:
        return self.data_dir / "index" / f"{_index_key(self.url)}-{_safe_name(embedder_name)}.faiss"

    def _embedder_by_id(self, embedder_id: int) -> EmbedderRow:
        with self.session() as s:
            row = s.get(EmbedderRow, embedder_id)
        if row is None:
            raise GalleryError(f"embedder #{embedder_id} is not in the gallery")
        return row

    def index_for(self, embedder_id: int) -> VectorIndex:
        """The embedder's index, loaded from disk and reconciled with the rows on first use."""
        if embedder_id in self._indexes:
            return self._indexes[embedder_id]
        emb = self._embedder_by_id(embedder_id)
        path = self.index_path(emb.name)
        index: VectorIndex | None = None
        if path.is_file():
            try:
                index = VectorIndex.load(path, emb.dim)
            except ValueError as exc:
                log.warning("%s; rebuilding it from the database", exc)
        if index is None:
            index = VectorIndex(emb.dim)
        self._indexes[embedder_id] = index
        self.sync_index(embedder_id)
        return index

    def sync_index(self, embedder_id: int) -> tuple[int, int]:
        """Make the index hold exactly the rows' vectors. Returns (added, dropped)."""
        index = self._indexes[embedder_id]
        with self.session() as s:
            db_ids = np.fromiter(
                s.scalars(
                    select(DetectionRow.id).where(
                        DetectionRow.embedder_id == embedder_id, DetectionRow.embedding.is_not(None)
                    )
                ),
                dtype=np.int64,
            )
        idx_ids = index.ids()
        missing = np.setdiff1d(db_ids, idx_ids, assume_unique=False)
        extra = np.setdiff1d(idx_ids, db_ids, assume_unique=False)
        if len(idx_ids) != len(np.unique(idx_ids)):  # duplicated vectors: start over
            index.remove(idx_ids)
            missing, extra = db_ids, np.zeros(0, np.int64)
        dropped = index.remove(extra) if len(extra) else 0
        for ids, vecs in self._vectors(missing):
            index.add(ids, vecs)
        if len(missing) or dropped:
            log.warning(
                "index %s repaired: %d vectors added from the database, %d without a row dropped",
                self.index_path(self._embedder_by_id(embedder_id).name).name,
                len(missing),
                dropped,
            )
            self._dirty.add(embedder_id)
            self.save_indexes()
        return len(missing), dropped

    def _vectors(
        self, ids: NDArray[np.int64]
    ) -> Iterator[tuple[NDArray[np.int64], NDArray[np.float32]]]:
        with self.session() as s:
            for start in range(0, len(ids), _CHUNK):
                chunk = [int(i) for i in ids[start : start + _CHUNK]]
                rows = s.execute(
                    select(DetectionRow.id, DetectionRow.embedding).where(
                        DetectionRow.id.in_(chunk)
                    )
                ).all()
                if rows:
                    yield (
                        np.asarray([r[0] for r in rows], np.int64),
                        np.stack([np.frombuffer(r[1] or b"", np.float32) for r in rows]),
                    )

    def save_indexes(self) -> None:
        for embedder_id in sorted(self._dirty):
            emb = self._embedder_by_id(embedder_id)
            try:
                self._indexes[embedder_id].save(self.index_path(emb.name))
            except OSError as exc:
                raise GalleryError(
                    f"cannot write index {self.index_path(emb.name)}: {exc.strerror}; "
                    "the rows are safe and the index is rebuilt on next open"
                ) from None
        self._dirty.clear()


def _size_of(path: Path) -> int:
    try:
        if path.is_dir():
            return sum(p.stat().st_size for p in path.iterdir() if p.is_file())
        return path.stat().st_size
    except OSError:
        return 0


def wipe(url: str) -> None:
    """Drop every prowl table (tests and `--force`-style resets of a whole gallery)."""
    engine = create_engine(url)
    try:
        Base.metadata.drop_all(engine)
    except SQLAlchemyError as exc:  # pragma: no cover
        raise GalleryError(f"cannot reset {_safe_url(url)}: {exc}") from None
    finally:
        engine.dispose()
