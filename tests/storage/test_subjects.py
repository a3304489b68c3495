"""Named subjects kept in the gallery (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.core.errors import ProwlError
from storage.gallery import Gallery
from storage.subjects import delete_subject, save_subject, subject, subject_named, subjects
from tests.storage.test_gallery import _fill


def test_subjects_are_created_added_to_listed_and_deleted(db_url: str, tmp_path: Path) -> None:
    with Gallery(db_url, tmp_path) as g:
        filled = _fill(g, np.random.default_rng(0), cameras=("north",), frames=5, per_frame=2)
        ids = sorted(filled["vectors"])  # type: ignore[call-overload]
        assert subjects(g) == []  # no table yet: nothing, not an error
        a = save_subject(g, " suspect A ", ids[:2], notes="red jacket")
        assert a.name == "suspect A" and a.detection_ids == tuple(sorted(ids[:2]))
        again = save_subject(g, "suspect A", [ids[1], ids[2]])  # adds, no duplicates
        assert again.id == a.id and again.detection_ids == tuple(sorted(ids[:3]))
        save_subject(g, "B", [ids[4]])
        assert subjects(g) == [(subject_named(g, "B").id, "B", 1), (again.id, "suspect A", 3)]
        with pytest.raises(ProwlError, match="no detection 999999"):
            save_subject(g, "C", [ids[0], 999999])
        assert [n for _i, n, _c in subjects(g)] == ["B", "suspect A"]  # nothing half-written
        with pytest.raises(ProwlError, match="1 to 200 characters"):
            save_subject(g, "  ", ids[:1])
        with pytest.raises(ProwlError, match="no subject named 'Z'; subjects: B, suspect A"):
            subject_named(g, "Z")
        delete_subject(g, a.id)
        with pytest.raises(ProwlError, match="no subject"):
            subject(g, a.id)
        assert [n for _i, n, _c in subjects(g)] == ["B"]
