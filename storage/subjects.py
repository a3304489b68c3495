"""Named subjects: the sightings an analyst confirmed as one person, kept in the gallery.

The tables are created on the first write, so a gallery made before subjects existed (or
opened read-only for a query) needs no migration."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, inspect, select

from pipeline.errors import QueryError
from storage.gallery import Gallery
from storage.models import DetectionRow, SubjectRow, SubjectSightingRow

MAX_NAME = 200


@dataclass(frozen=True)
class Subject:
    id: int
    name: str
    notes: str | None
    detection_ids: tuple[int, ...]


def _exists(gallery: Gallery) -> bool:
    return inspect(gallery.engine).has_table(SubjectRow.__tablename__)


def save_subject(
    gallery: Gallery, name: str, detection_ids: Sequence[int], notes: str | None = None
) -> Subject:
    """Create the subject ``name`` or add sightings to it. Every id must be a stored
    detection; nothing is written otherwise."""
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise QueryError(f"a subject needs a name of 1 to {MAX_NAME} characters")
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
            row = SubjectRow(name=name, notes=notes)
            s.add(row)
            s.flush()
        elif notes is not None:
            row.notes = notes
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
    return Subject(row.id, row.name, row.notes, ids)


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
    if not _exists(gallery):
        return []
    with gallery.session() as s:
        rows = s.execute(
            select(SubjectRow.id, SubjectRow.name, func.count(SubjectSightingRow.detection_id))
            .outerjoin(SubjectSightingRow, SubjectSightingRow.subject_id == SubjectRow.id)
            .group_by(SubjectRow.id, SubjectRow.name)
            .order_by(SubjectRow.name)
        ).all()
    return [(int(i), str(n), int(c)) for i, n, c in rows]


def delete_subject(gallery: Gallery, subject_id: int) -> None:
    subject(gallery, subject_id)  # says so when there is none
    with gallery.session() as s, s.begin():
        s.execute(delete(SubjectSightingRow).where(SubjectSightingRow.subject_id == subject_id))
        s.execute(delete(SubjectRow).where(SubjectRow.id == subject_id))
