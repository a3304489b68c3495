"""Re-embed a gallery with another embedder (`prowl reembed`): every stored crop through the
new embedder, batched, committed as it goes (a killed run resumes where it stopped), the
gallery answering with the old vectors until all new ones exist, then switched over at once:
rows, runs and tracks in one transaction, then the new index."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pipeline.core.errors import GalleryError
from pipeline.core.files import sha256_of
from reid import Embedder
from storage import reembed as store
from storage.database import bump_version
from storage.gallery import Gallery

log = logging.getLogger(__name__)


@dataclass
class ReembedSummary:
    old: str
    new: str
    vectors: int  # the gallery's vectors in all
    made_now: int
    switched: bool  # False: stopped before the end; the same command resumes


def reembed(
    gallery: Gallery,
    embedder: Embedder,
    source: str | None = None,
    batch: int = 256,
    progress: Callable[[int, int], None] | None = None,
    stop: threading.Event | None = None,
) -> ReembedSummary:
    """Re-embed the vectors of embedder ``source`` (the gallery's only one by default) with
    ``embedder``, from the stored thumbnails. ``progress(done, total)`` after each batch."""
    old = gallery.embedder_for_query(source)
    weights_sha = sha256_of(Path(embedder.weights)) if embedder.weights else None
    if old.name == embedder.name and old.weights_sha256 == weights_sha:
        raise GalleryError(f"the gallery's vectors already come from {old.name}; nothing to do")
    new = gallery.embedder_row(embedder.name, embedder.dim, embedder.weights, weights_sha)
    store.ensure_table(gallery.engine)
    made_now = 0
    while True:
        with gallery.session() as s:
            total, done = store.progress(s, old.id, new.id)
            todo = store.next_batch(s, old.id, new.id, batch)
        if progress is not None:
            progress(done, total)
        if not todo:
            with gallery.session() as s, s.begin():
                switched = store.switch(s, old, new)
                bump_version(s)
            if switched:
                break
            continue  # an ingest added rows meanwhile: embed them too
        crops = [cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR) for _, jpeg in todo]
        vectors = embedder.embed([np.asarray(c, np.uint8) for c in crops])
        with gallery.session() as s, s.begin():
            store.store(s, new.id, [i for i, _ in todo], vectors)
        made_now += len(todo)
        if stop is not None and stop.is_set():
            return ReembedSummary(old.name, new.name, total, made_now, False)
    # The new index from the rows; the old one is of no use any more.
    gallery.drop_index(old.id)
    gallery.index_for(new.id)
    gallery.save_indexes()
    return ReembedSummary(old.name, new.name, total, made_now, True)
