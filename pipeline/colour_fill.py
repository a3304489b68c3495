"""Clothing colours for sightings stored before prowl named them (`prowl colours`): named
from each sighting's stored thumbnail, in batches, resumable (only rows still without
colours are read), without touching anything else."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
from sqlalchemy import func, select, update

from pipeline.core.colours import colour_columns_batch
from storage.gallery import Gallery
from storage.models import DetectionRow

BATCH = 2000


def uncoloured(gallery: Gallery) -> int:
    """How many sightings have no colours yet."""
    with gallery.session() as s:
        return int(s.scalar(select(func.count()).where(DetectionRow.upper_colours.is_(None))) or 0)


def fill_colours(gallery: Gallery, progress: Callable[[int], None] | None = None) -> int:
    """Name the colours of every sighting that has none; returns how many were named. A
    thumbnail that does not decode is marked '' (looked at, no colour) so it is not retried."""
    done, last = 0, 0
    while True:
        with gallery.session() as s:
            rows = s.execute(
                select(DetectionRow.id, DetectionRow.thumbnail)
                .where(DetectionRow.upper_colours.is_(None), DetectionRow.id > last)
                .order_by(DetectionRow.id)
                .limit(BATCH)
            ).all()
        if not rows:
            return done
        images = [cv2.imdecode(np.frombuffer(t, np.uint8), cv2.IMREAD_COLOR) for _i, t in rows]
        named = colour_columns_batch(
            [
                np.asarray(im, np.uint8) if im is not None else np.zeros((0, 0, 3), np.uint8)
                for im in images
            ]
        )
        with gallery.session() as s, s.begin():
            s.execute(
                update(DetectionRow),
                [
                    {"id": i, "upper_colours": up or "", "lower_colours": low or ""}
                    for (i, _t), (up, low) in zip(rows, named, strict=True)
                ],
            )
        done += len(rows)
        last = rows[-1][0]
        if progress is not None:
            progress(len(rows))
