"""A gallery's database connection and its FAISS indexes kept equal to the rows.

When a gallery is opened for search, each index is compared with the rows and repaired:
vectors missing from the index are added from the rows, vectors without a row are dropped.
Index files are written atomically, after the database commits they mirror.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Self

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from pipeline.core.errors import GalleryError
from storage.database import index_key, open_engine, read_version
from storage.index import ANN_MIN_VECTORS, VectorIndex
from storage.models import DetectionRow, EmbedderRow
from storage.search import GalleryReads

log = logging.getLogger(__name__)

_CHUNK = 5000


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


class IndexedGallery(GalleryReads):
    """Open (and, unless ``must_exist``, create) the gallery at ``url``; FAISS index files
    live under ``data_dir/index``. Use it as a context manager: leaving saves the indexes."""

    def __init__(
        self,
        url: str,
        data_dir: Path,
        *,
        must_exist: bool = False,
        ann_min_vectors: int | None = ANN_MIN_VECTORS,
    ) -> None:
        self.url = url
        self.data_dir = Path(data_dir)
        self.ann_min_vectors = ann_min_vectors if ann_min_vectors is not None else 2**62
        self._indexes: dict[int, VectorIndex] = {}
        self._dirty: set[int] = set()
        self.engine: Engine
        self.engine, self.backend = open_engine(url, self.data_dir, must_exist)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            self.close()
            return
        # Already failing: the first error is the one to report; the index, if it cannot be
        # saved now, is rebuilt from the rows on next open.
        try:
            self.save_indexes()
        except Exception as exc:
            log.debug("index not saved while failing: %s", exc)
        self.engine.dispose()

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def version(self) -> int | None:
        """The gallery's change counter (bumped by every commit that changes sightings)."""
        return read_version(self.engine)

    def close(self) -> None:
        self.save_indexes()
        self.engine.dispose()

    # ---------------------------------------------------------------- the index
    def index_path(self, embedder_name: str) -> Path:
        return self.data_dir / "index" / f"{index_key(self.url)}-{_safe_name(embedder_name)}.faiss"

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
                index = VectorIndex.load(path, emb.dim, self.ann_min_vectors)
            except ValueError as exc:
                log.warning("%s; rebuilding it from the database", exc)
        fresh = index is None
        if index is None:
            index = VectorIndex(emb.dim, ann_min_vectors=self.ann_min_vectors)
        self._indexes[embedder_id] = index
        self.sync_index(embedder_id, fresh=fresh)
        return index

    def sync_index(self, embedder_id: int, fresh: bool = False) -> tuple[int, int]:
        """Make the index hold exactly the rows' vectors. Returns (added, dropped).

        Only a disagreement that means damage is a warning: an index built anew (``fresh``: no
        file, or an unreadable one already warned about), or one that only lacks rows newer
        than all it holds (committed by another ingest, or after a kill), is caught up quietly.
        """
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
            name = self.index_path(self._embedder_by_id(embedder_id).name).name
            newer_only = not dropped and (
                len(idx_ids) == 0 or int(missing.min()) > int(idx_ids.max())
            )
            if fresh or newer_only:
                log.info("index %s: %d vectors added from the database", name, len(missing))
            else:
                log.warning(
                    "index %s repaired: %d vectors added from the database, %d without a row "
                    "dropped",
                    name,
                    len(missing),
                    dropped,
                )
            self._dirty.add(embedder_id)
            self.save_indexes()
        return len(missing), dropped

    def refresh_indexes(self) -> None:
        """Catch every loaded index up with rows another connection committed."""
        for embedder_id in sorted(self._indexes):
            self.sync_index(embedder_id)

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

    def drop_index(self, embedder_id: int) -> None:
        """Forget an embedder's index and delete its files (its vectors are gone)."""
        path = self.index_path(self._embedder_by_id(embedder_id).name)
        self._indexes.pop(embedder_id, None)
        self._dirty.discard(embedder_id)
        for suffix in ("", ".sha256", ".ivf", ".ivf.for"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)

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
