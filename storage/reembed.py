"""The storage side of re-embedding a gallery with another embedder: vectors wait in
``reembed_vectors`` (the gallery keeps answering with the old ones), and one transaction
switches every row, run and track over once all of them exist."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Engine, delete, exists, func, insert, select, update
from sqlalchemy.orm import Session

from storage.models import DetectionRow, EmbedderRow, PendingVectorRow, RunRow
from storage.tracks import rebuild_tracks


def ensure_table(engine: Engine) -> None:
    """Galleries made before re-embedding existed lack the table."""
    PendingVectorRow.__table__.create(engine, checkfirst=True)  # type: ignore[attr-defined]


def _waiting(old_id: int, new_id: int):  # type: ignore[no-untyped-def]
    done = exists().where(
        PendingVectorRow.detection_id == DetectionRow.id, PendingVectorRow.embedder_id == new_id
    )
    return (
        DetectionRow.embedder_id == old_id,
        DetectionRow.embedding.is_not(None),
        ~done,
    )


def progress(s: Session, old_id: int, new_id: int) -> tuple[int, int]:
    """(vectors to make in all, vectors made)."""
    total = s.scalar(
        select(func.count(DetectionRow.id)).where(
            DetectionRow.embedder_id == old_id, DetectionRow.embedding.is_not(None)
        )
    )
    made = s.scalar(
        select(func.count(PendingVectorRow.detection_id)).where(
            PendingVectorRow.embedder_id == new_id
        )
    )
    return int(total or 0), int(made or 0)


def next_batch(s: Session, old_id: int, new_id: int, n: int) -> list[tuple[int, bytes]]:
    """(detection id, JPEG thumbnail) of up to ``n`` rows still without a new vector."""
    rows = s.execute(
        select(DetectionRow.id, DetectionRow.thumbnail)
        .where(*_waiting(old_id, new_id))
        .order_by(DetectionRow.id)
        .limit(n)
    ).all()
    return [(int(i), bytes(t)) for i, t in rows]


def store(s: Session, new_id: int, ids: Sequence[int], vectors: NDArray[np.float32]) -> None:
    s.execute(
        insert(PendingVectorRow),
        [
            {"detection_id": i, "embedder_id": new_id, "embedding": v.astype(np.float32).tobytes()}
            for i, v in zip(ids, vectors, strict=True)
        ],
    )


def switch(s: Session, old: EmbedderRow, new: EmbedderRow) -> bool:
    """Inside the caller's transaction: give every row of ``old`` its new vector and embedder,
    move the runs (settings key included) and rebuild their tracks. False, changing nothing,
    when some row still lacks its new vector (an ingest added rows meanwhile)."""
    if s.scalar(select(func.count(DetectionRow.id)).where(*_waiting(old.id, new.id))):
        return False
    new_vec = (
        select(PendingVectorRow.embedding)
        .where(
            PendingVectorRow.detection_id == DetectionRow.id,
            PendingVectorRow.embedder_id == new.id,
        )
        .scalar_subquery()
    )
    s.execute(
        update(DetectionRow)
        .where(DetectionRow.embedder_id == old.id, DetectionRow.embedding.is_not(None))
        .values(embedding=new_vec, embedder_id=new.id)
        .execution_options(synchronize_session=False)
    )
    s.execute(
        update(DetectionRow)
        .where(DetectionRow.embedder_id == old.id)
        .values(embedder_id=new.id)
        .execution_options(synchronize_session=False)
    )
    runs = list(s.scalars(select(RunRow).where(RunRow.embedder_id == old.id)))
    for run in runs:
        run.embedder_id = new.id
        run.settings_key = run.settings_key.replace(f"reid={old.name}", f"reid={new.name}")
    s.flush()
    for run in runs:
        rebuild_tracks(s, run)
    s.execute(delete(PendingVectorRow).where(PendingVectorRow.embedder_id == new.id))
    return True
