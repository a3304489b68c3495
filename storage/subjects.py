"""Named subjects: the sightings an analyst confirmed as one person, kept in the gallery.

The tables are created on the first write, so a gallery made before subjects existed (or
opened read-only for a query) needs no migration."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, inspect, select

from pipeline.core.errors import QueryError
from storage.gallery import Gallery
from storage.models import DetectionRow, SubjectRow, SubjectSightingRow

MAX_NAME = 200


@dataclass(frozen=True)
class Subject:
    id: int
    name: str
    notes: str | None
    detection_ids: tuple[int, ...]
    case_name: str | None = None  # the investigation it belongs to
    analyst: str | None = None

    def case(self) -> dict[str, object]:
        """What an evidence export records of the case."""
        return {
            "case": self.case_name,
            "analyst": self.analyst,
            "subject": self.name,
            "notes": self.notes,
            "sightings": len(self.detection_ids),
        }


def _exists(gallery: Gallery) -> bool:
    return inspect(gallery.engine).has_table(SubjectRow.__tablename__)


def _text(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if len(value) > MAX_NAME:
        raise QueryError(f"the {what} is over {MAX_NAME} characters")
    return value or None


def save_subject(
    gallery: Gallery,
    name: str,
    detection_ids: Sequence[int],
    notes: str | None = None,
    case_name: str | None = None,
    analyst: str | None = None,
) -> Subject:
    """Create the subject ``name`` or add sightings to it (and set its case, analyst and
    notes when given). Every id must be a stored detection; nothing is written otherwise."""
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise QueryError(f"a subject needs a name of 1 to {MAX_NAME} characters")
    case_name, analyst = _text(case_name, "case name"), _text(analyst, "analyst name")
    wanted = sorted({int(d) for d in detection_ids})
    if not wanted:
        raise QueryError("a subject needs at least one confirmed sighting")
    SubjectRow.__table__.create(gallery.engine, checkfirst=True)  # type: ignore[attr-defined]
    SubjectSightingRow.__table__.create(gallery.engine, checkfirst=True)  # type: ignore[attr-defined]
    with gallery.session() as s, s.begin():
        known = set(s.scalars(select(DetectionRow.id).where(DetectionRow.id.in_(wanted))))
        missing = [d for d in wanted if d not in known]
        if missing:
            raise QueryError(f"no detection {', '.join(map(str, missing[:5]))} in the gallery")
        row = s.scalars(select(SubjectRow).where(SubjectRow.name == name)).first()
        if row is None:
            row = SubjectRow(name=name, notes=notes, case_name=case_name, analyst=analyst)
            s.add(row)
            s.flush()
        else:
            row.notes = notes if notes is not None else row.notes
            row.case_name = case_name if case_name is not None else row.case_name
            row.analyst = analyst if analyst is not None else row.analyst
        have = set(
            s.scalars(
                select(SubjectSightingRow.detection_id).where(
                    SubjectSightingRow.subject_id == row.id
                )
            )
        )
        s.add_all(
            SubjectSightingRow(subject_id=row.id, detection_id=d) for d in wanted if d not in have
        )
        subject_id = row.id
    return subject(gallery, subject_id)


def subject(gallery: Gallery, subject_id: int) -> Subject:
    if not _exists(gallery):
        raise QueryError(f"no subject {subject_id} in the gallery")
    with gallery.session() as s:
        row = s.get(SubjectRow, subject_id)
        if row is None:
            raise QueryError(f"no subject {subject_id} in the gallery")
        ids = tuple(
            s.scalars(
                select(SubjectSightingRow.detection_id)
                .where(SubjectSightingRow.subject_id == subject_id)
                .order_by(SubjectSightingRow.detection_id)
            )
        )
    return Subject(row.id, row.name, row.notes, ids, row.case_name, row.analyst)


def subject_named(gallery: Gallery, name: str) -> Subject:
    if _exists(gallery):
        with gallery.session() as s:
            sid = s.scalars(select(SubjectRow.id).where(SubjectRow.name == name.strip())).first()
        if sid is not None:
            return subject(gallery, sid)
    known = ", ".join(n for _i, n, _c in subjects(gallery)) or "none yet"
    raise QueryError(f"no subject named {name!r}; subjects: {known}")


def subjects(gallery: Gallery) -> list[tuple[int, str, int]]:
    """(id, name, sightings) of every subject, by name."""
    return [(i, n, c) for i, n, c, _case in subjects_with_cases(gallery)]


def subjects_with_cases(gallery: Gallery) -> list[tuple[int, str, int, str | None]]:
    """(id, name, sightings, case name) of every subject, by name."""
    if not _exists(gallery):
        return []
    with gallery.session() as s:
        rows = s.execute(
            select(
                SubjectRow.id,
                SubjectRow.name,
                func.count(SubjectSightingRow.detection_id),
                SubjectRow.case_name,
            )
            .outerjoin(SubjectSightingRow, SubjectSightingRow.subject_id == SubjectRow.id)
            .group_by(SubjectRow.id, SubjectRow.name, SubjectRow.case_name)
            .order_by(SubjectRow.name)
        ).all()
    return [(int(i), str(n), int(c), case) for i, n, c, case in rows]


def update_subject(
    gallery: Gallery,
    subject_id: int,
    name: str | None = None,
    notes: str | None = None,
    case_name: str | None = None,
    analyst: str | None = None,
) -> Subject:
    """Rename a subject or change its notes, case or analyst (None: unchanged; "" clears
    notes, case and analyst). A name another subject has is refused."""
    subject(gallery, subject_id)  # says so when there is none
    with gallery.session() as s, s.begin():
        row = s.get(SubjectRow, subject_id)
        assert row is not None
        if name is not None:
            name = name.strip()
            if not name or len(name) > MAX_NAME:
                raise QueryError(f"a subject needs a name of 1 to {MAX_NAME} characters")
            taken = s.scalars(
                select(SubjectRow.id).where(SubjectRow.name == name, SubjectRow.id != subject_id)
            ).first()
            if taken is not None:
                raise QueryError(f"another subject is already named {name!r}")
            row.name = name
        if notes is not None:
            row.notes = notes.strip() or None
        if case_name is not None:
            row.case_name = _text(case_name, "case name")
        if analyst is not None:
            row.analyst = _text(analyst, "analyst name")
    return subject(gallery, subject_id)


def delete_subject(gallery: Gallery, subject_id: int) -> None:
    subject(gallery, subject_id)  # says so when there is none
    with gallery.session() as s, s.begin():
        s.execute(delete(SubjectSightingRow).where(SubjectSightingRow.subject_id == subject_id))
        s.execute(delete(SubjectRow).where(SubjectRow.id == subject_id))


@dataclass(frozen=True)
class SubjectSighting:
    """A subject's sighting by where it is (frame and box), to find it again among the rows of
    a run ingested anew (`prowl ingest --force --reattach-subjects`)."""

    subject_id: int
    subject: str
    frame_index: int
    xyxy: tuple[float, float, float, float]


def subject_sightings_of_run(gallery: Gallery, run_id: int) -> list[SubjectSighting]:
    if not _exists(gallery):
        return []
    with gallery.session() as s:
        rows = s.execute(
            select(
                SubjectRow.id,
                SubjectRow.name,
                DetectionRow.frame_index,
                DetectionRow.x1,
                DetectionRow.y1,
                DetectionRow.x2,
                DetectionRow.y2,
            )
            .join(SubjectSightingRow, SubjectSightingRow.subject_id == SubjectRow.id)
            .join(DetectionRow, DetectionRow.id == SubjectSightingRow.detection_id)
            .where(DetectionRow.run_id == run_id)
        ).all()
    return [
        SubjectSighting(int(i), str(n), int(f), (x1, y1, x2, y2))
        for i, n, f, x1, y1, x2, y2 in rows
    ]


def reattach(
    gallery: Gallery, run_id: int, sightings: Sequence[SubjectSighting], min_iou: float = 0.5
) -> tuple[int, int]:
    """Attach each sighting to the run's box on the same frame that overlaps it most (IoU >=
    ``min_iou``). Returns (attached, not found)."""
    import numpy as np

    from pipeline.core.boxes import iou_matrix

    frames = sorted({x.frame_index for x in sightings})
    with gallery.session() as s, s.begin():
        boxes: dict[int, list[tuple[int, tuple[float, float, float, float]]]] = {}
        for start in range(0, len(frames), 500):
            for did, f, x1, y1, x2, y2 in s.execute(
                select(
                    DetectionRow.id,
                    DetectionRow.frame_index,
                    DetectionRow.x1,
                    DetectionRow.y1,
                    DetectionRow.x2,
                    DetectionRow.y2,
                ).where(
                    DetectionRow.run_id == run_id,
                    DetectionRow.frame_index.in_(frames[start : start + 500]),
                )
            ):
                boxes.setdefault(int(f), []).append((int(did), (x1, y1, x2, y2)))
        found: set[tuple[int, int]] = set()
        for x in sightings:
            candidates = boxes.get(x.frame_index, [])
            if not candidates:
                continue
            ious = iou_matrix(
                np.asarray([x.xyxy], np.float32),
                np.asarray([b for _d, b in candidates], np.float32),
            )[0]
            best = int(np.argmax(ious))
            if ious[best] >= min_iou:
                found.add((x.subject_id, candidates[best][0]))
        have = set(
            s.execute(
                select(SubjectSightingRow.subject_id, SubjectSightingRow.detection_id).where(
                    SubjectSightingRow.detection_id.in_([d for _s, d in found] or [-1])
                )
            ).tuples()
        )
        s.add_all(
            SubjectSightingRow(subject_id=sid, detection_id=did)
            for sid, did in found
            if (sid, did) not in have
        )
    return len(found), len(sightings) - len(found)
