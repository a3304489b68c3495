"""The embedders a gallery knows: one row per embedder (name, dimension, weights and their
sha256), and which one a query uses."""

from __future__ import annotations

import logging

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from pipeline.core.errors import GalleryError
from storage.indexed import IndexedGallery
from storage.models import DetectionRow, EmbedderRow

log = logging.getLogger(__name__)


class GalleryEmbedders(IndexedGallery):
    """The embedder rows of the gallery; ``Gallery`` adds the write side of videos and runs."""

    # ---------------------------------------------------------------- embedders and videos
    def embedder_row(
        self,
        name: str,
        dim: int,
        weights: str | None = None,
        weights_sha256: str | None = None,
    ) -> EmbedderRow:
        """Get or create; safe when two ingests start at once (the loser re-reads). An
        embedder that takes a checkpoint is identified by the checkpoint's sha256 too."""
        row: EmbedderRow | None = None
        for _attempt in range(2):
            try:
                with self.session() as s, s.begin():
                    row = s.scalar(select(EmbedderRow).where(EmbedderRow.name == name))
                    if row is None:
                        row = EmbedderRow(
                            name=name, dim=dim, weights=weights, weights_sha256=weights_sha256
                        )
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
        if row.weights_sha256 != weights_sha256:
            built = (
                f"weights sha256 {row.weights_sha256[:12]}…"
                if row.weights_sha256
                else "no weights file"
            )
            now = f"sha256 {weights_sha256[:12]}…" if weights_sha256 else "no weights file"
            raise GalleryError(
                f"gallery holds '{name}' built with {built}, not {now}; use the same "
                "--reid-weights or another --data-dir/--db for this model"
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
                f"the gallery was built with {have}, not '{requested}'; drop --reid, pass "
                f"--reid {filled[0][0].name}, or re-embed it: prowl reembed --reid {requested}"
            )
        if len(filled) > 1:
            names = ", ".join(e.name for e, _ in filled)
            raise GalleryError(
                f"the gallery holds several embedders ({names}); choose one with --reid"
            )
        return filled[0][0]
