"""One search as a person asks for it (CLI, API, page): checked once, then placed on the
gallery (a time of day on its one day, the query's own cameras for "other cameras only")."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

import numpy as np
from numpy.typing import NDArray

from pipeline.core.colours import check_colour
from pipeline.core.errors import ConfigError, QueryError
from pipeline.core.timeline import When, parse_when
from pipeline.query import QueryResult, run_query
from reid import Embedder
from storage.gallery import Gallery, SearchFilters

BY = ("track", "detection")


@dataclass(frozen=True)
class QuerySpec:
    """``images``: how many query crops come with it; ``subject``: a saved subject whose
    confirmed sightings join the query. ``window``: the ``--from``/``--to`` texts (see
    ``pipeline.core.timeline.parse_when``); ``per_camera``: at most that many answers per
    camera (0: no cap); ``other_cameras``: leave out the cameras and videos the query's
    stored sightings come from."""

    k: int
    by: str = "track"
    filters: SearchFilters = field(default_factory=SearchFilters)
    detection_id: int | None = None
    confirmed: tuple[int, ...] = ()
    rejected: tuple[int, ...] = ()
    subject: str | int | None = None
    strays: bool = False
    rerank: bool = False
    expand: int = 0
    images: int = 0
    window: tuple[str | None, str | None] = (None, None)
    per_camera: int = 0
    other_cameras: bool = False

    def check(self) -> QuerySpec:
        """Itself, or a QueryError naming what is wrong (one line, said the same way to the
        CLI and the API)."""
        stored = self.detection_id is not None or self.confirmed or self.subject
        if not (self.images or stored or self.filters.by_colour):
            raise QueryError(
                "nothing to query; give an image, a detection id (--detection), a subject, "
                "confirmed sightings or a clothing colour (--upper/--lower)"
            )
        for name in (*self.filters.upper, *self.filters.lower):
            try:
                check_colour(name)
            except ValueError as exc:
                raise QueryError(str(exc)) from None
        if self.k < 1:
            raise QueryError(f"k = {self.k}: ask for at least 1 hit")
        if self.by not in BY:
            raise QueryError(f"by = {self.by!r}: answer by {' or '.join(BY)}")
        if self.expand < 0:
            raise QueryError(f"expand = {self.expand}: 0 (off) or a number of best hits")
        if self.per_camera < 0:
            raise QueryError(f"per camera = {self.per_camera}: 0 (no cap) or a number of hits")
        if self.other_cameras and not stored:
            raise QueryError(
                "other cameras only needs a query from the gallery (a detection, a hit, a "
                "subject) to know its camera; with an image, leave cameras out by name"
            )
        f = self.filters
        if f.min_similarity is not None and not -1.0 <= f.min_similarity <= 1.0:
            raise QueryError("the minimum similarity is a cosine similarity within -1..1")
        lo, hi = self.moments()
        if lo is not None and hi is not None:
            if (lo.offset_s is None) != (hi.offset_s is None):
                raise QueryError(
                    "--from and --to are both seconds from each video's start (90, +1:30) or "
                    "both times (15:45:20, 2026-11-25T15:45:20), not one of each"
                )
            if lo.offset_s is not None and hi.offset_s is not None and hi.offset_s < lo.offset_s:
                raise QueryError("the time window ends before it starts (--to before --from)")
        if f.from_s is not None and f.to_s is not None and f.to_s < f.from_s:
            raise QueryError("the time window ends before it starts (--to before --from)")
        return self

    def moments(self) -> tuple[When | None, When | None]:
        try:
            return tuple(None if t in (None, "") else parse_when(t) for t in self.window)  # type: ignore[return-value]
        except ConfigError as exc:
            raise QueryError(str(exc)) from None

    def placed(self, gallery: Gallery) -> tuple[SearchFilters, list[str]]:
        """The filters with the window on the gallery's time axis, and notes to show."""
        f, notes = self.filters, list[str]()
        lo, hi = self.moments()
        if lo is None and hi is None:
            return f, notes
        if (lo or hi).offset_s is not None:  # type: ignore[union-attr]
            return replace(
                f, from_s=lo.offset_s if lo else None, to_s=hi.offset_s if hi else None
            ), notes
        videos = gallery.videos()
        days = covered_days(
            [(v.start_time, v.frame_count / v.fps if v.fps else 0.0) for v in videos]
        )
        try:
            at_lo = lo.on_day(days) if lo else None
            at_hi = hi.on_day(days) if hi else None
        except ConfigError as exc:
            raise QueryError(str(exc)) from None
        if at_lo is not None and at_hi is not None and _naive(at_hi) < _naive(at_lo):
            raise QueryError("the time window ends before it starts (--to before --from)")
        undated = [v for v in videos if not v.start_time]
        if undated:
            names = ", ".join(sorted({v.path.rsplit("/", 1)[-1] for v in undated})[:3])
            notes.append(
                f"{len(undated)} video{'s' if len(undated) > 1 else ''} with no known start "
                f"time ({names}) left out of the date-time window; give such footage a start "
                "(ingest --start-time) or search it by seconds from its start (--from +90)"
            )
        iso = [None if t is None else t.isoformat() for t in (at_lo, at_hi)]
        return replace(f, from_time=iso[0], to_time=iso[1]), notes

    def run(
        self,
        gallery: Gallery,
        crops: list[NDArray[np.uint8]],
        reid: str | None = None,
        weights: str | None = None,
        loaded: tuple[int, Embedder] | None = None,
        confirmed: Sequence[int] | None = None,
    ) -> QueryResult:
        """``run_query`` with this search; ``confirmed``: the sightings to fuse when the
        caller has resolved a subject into them (default: the spec's own)."""
        confirmed = self.confirmed if confirmed is None else confirmed
        filters, notes = self.placed(gallery)
        if self.other_cameras:
            own = [d for d in [self.detection_id, *confirmed] if d is not None]
            rows = [gallery.detection(int(d)) for d in own]
            filters = replace(
                filters,
                exclude_cameras=tuple(sorted({v.camera_id for _r, v in rows})),
                exclude_videos=tuple(sorted({v.id for _r, v in rows})),
            )
        result = run_query(
            gallery,
            crops,
            self.k,
            filters,
            reid=reid,
            detection_id=self.detection_id,
            rerank=self.rerank,
            by=self.by,
            weights=weights,
            loaded=loaded,
            confirmed=confirmed,
            rejected=self.rejected,
            strays=self.strays,
            expand=self.expand,
            per_camera=self.per_camera,
        )
        if filters.by_colour:
            from pipeline.colour_fill import uncoloured

            missing = uncoloured(gallery)
            if missing:
                notes.append(
                    f"{missing} sightings have no clothing colours yet (stored before prowl "
                    "named them) and cannot match --upper/--lower: `prowl colours` names them"
                )
        result.notes[:0] = notes
        return result


def covered_days(videos: Sequence[tuple[str | None, float]]) -> set[date]:
    """The calendar days that dated footage covers: (start ISO or None, duration s) each."""
    days: set[date] = set()
    for start_iso, duration_s in videos:
        if not start_iso:
            continue
        start = datetime.fromisoformat(start_iso)
        day, last = start.date(), (start + timedelta(seconds=max(duration_s, 0.0))).date()
        while day <= last:
            days.add(day)
            day += timedelta(days=1)
    return days


def _naive(t: datetime) -> datetime:
    return t.replace(tzinfo=None)
