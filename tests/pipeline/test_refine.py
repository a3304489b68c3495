"""Refining a search with marked hits, on the real vtest gallery: a rejected sighting never
comes back and its look-alikes fall; confirmed sightings join the query."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import select

from pipeline.query import run_query
from storage.models import DetectionRow

pytestmark = pytest.mark.slow

K = 20


def _track_of(gallery) -> dict[int, int | None]:  # type: ignore[no-untyped-def]
    with gallery.session() as s:
        return dict(s.execute(select(DetectionRow.id, DetectionRow.track_id)).tuples().all())


def test_rejecting_a_wrong_person_pushes_that_person_down(vtest_gallery) -> None:  # type: ignore[no-untyped-def]
    """An analyst rejects one sighting of the most frequent wrong person in the top 20: that
    sighting and its track (the same person, says the tracker) leave the top 20, and over the
    queries the analyst's own person gains the places."""
    _cfg, gallery, _s, _ = vtest_gallery
    track = _track_of(gallery)
    cases = own_before = own_after = 0
    for query_id in sorted(track)[::9]:
        if track[query_id] is None:
            continue
        before = run_query(gallery, [], K, detection_id=query_id).hits
        others = Counter(
            track[h.detection_id]
            for h in before
            if track[h.detection_id] not in (track[query_id], None)
        )
        if not others:
            continue
        wrong_track = others.most_common(1)[0][0]
        wrong = next(h.detection_id for h in before if track[h.detection_id] == wrong_track)
        after = run_query(gallery, [], K, detection_id=query_id, rejected=[wrong]).hits
        assert len(after) == K and wrong not in {h.detection_id for h in after}
        assert not [h for h in after if track[h.detection_id] == wrong_track], query_id
        own_before += sum(track[h.detection_id] == track[query_id] for h in before)
        own_after += sum(track[h.detection_id] == track[query_id] for h in after)
        cases += 1
        if cases == 8:
            break
    assert cases == 8 and own_after > own_before, (cases, own_before, own_after)


def test_confirmed_sightings_join_the_query(vtest_gallery) -> None:  # type: ignore[no-untyped-def]
    _cfg, gallery, _s, _ = vtest_gallery
    track = _track_of(gallery)
    gained = checked = own_before = own_after = 0
    for query_id in sorted(track)[::29][:12]:
        if track[query_id] is None:
            continue
        before = run_query(gallery, [], K, detection_id=query_id).hits
        mine = [h for h in before if track[h.detection_id] == track[query_id]]
        if len(mine) < 3:
            continue
        confirmed = [mine[-1].detection_id]  # the least similar sighting the analyst confirms
        after = run_query(gallery, [], K, detection_id=query_id, confirmed=confirmed).hits
        assert {confirmed[0], query_id} <= {h.detection_id for h in after[:5]} | {query_id}
        mine_after = sum(track[h.detection_id] == track[query_id] for h in after)
        own_before, own_after = own_before + len(mine), own_after + mine_after
        gained += mine_after > len(mine)
        checked += 1
    # a fused query moves towards the confirmed view: it may trade a sighting or two near the
    # first view for others, but on balance the person fills more of the answer
    assert checked >= 5 and gained >= 1 and own_after >= own_before, (
        checked,
        gained,
        own_before,
        own_after,
    )


def test_marks_from_another_embedder_or_unknown_ids_are_refused(vtest_gallery) -> None:  # type: ignore[no-untyped-def]
    from pipeline.core.errors import ProwlError

    _cfg, gallery, _s, _ = vtest_gallery
    with pytest.raises(ProwlError, match="no detection"):
        run_query(gallery, [], K, detection_id=1, rejected=[10**9])


def test_cli_refines_and_writes_evidence(vtest_gallery, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    import csv
    import io
    import zipfile

    from cli import main
    from tests.conftest import where

    cfg, gallery, _s, data = vtest_gallery
    query = sorted(_track_of(gallery))[40]
    first = run_query(gallery, [], 5, detection_id=query).hits
    rejected = first[1].detection_id
    argv = ["query", "--detection", str(query), "--by", "detection", "--k", "4"]
    argv += ["--rejected", str(rejected), "--evidence", str(tmp_path / "case.zip")]
    assert main([*argv, *where(cfg, data)]) == 0
    assert "evidence: " in capsys.readouterr().out
    z = zipfile.ZipFile(tmp_path / "case.zip")
    rows = list(csv.DictReader(io.StringIO(z.read("hits.csv").decode())))
    assert len(rows) == 4 and str(rejected) not in {r["detection_id"] for r in rows}
    assert f"clips/rank001-det{rows[0]['detection_id']}.webm" in z.namelist()

    assert main(["query", "--subject", "nobody", *where(cfg, data)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no subject named 'nobody'" in err[0]


@pytest.mark.slow
def test_force_never_silently_empties_a_saved_subject(vtest_path, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """`prowl ingest VIDEO --force` used to drop a subject's sightings with the old rows, so
    the analyst's subject searched as empty. Now --force refuses while subjects hold
    sightings of the video, and --reattach-subjects re-ingests and attaches them to the new
    boxes; the subject then still searches."""
    from cli import main
    from storage.gallery import Gallery
    from storage.subjects import save_subject, subject_named

    data = tmp_path / "g"
    base = ["ingest", str(vtest_path), "--end", "4", "--camera", "campus", "--data-dir", str(data)]
    assert main([*base, "-q"]) == 0
    with Gallery(f"sqlite:///{data / 'gallery.db'}", data) as g:
        rows = g.frame_detections(g.videos()[0].id, 20)[:2]
        assert len(rows) == 2
        save_subject(g, "suspect", [r.id for r in rows])
        boxes = sorted((r.frame_index, round(r.x1), round(r.y1)) for r in rows)
    capsys.readouterr()
    assert main([*base, "--force", "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "suspect" in err[0] and "--reattach-subjects" in err[0], err
    with Gallery(f"sqlite:///{data / 'gallery.db'}", data) as g:
        assert len(subject_named(g, "suspect").detection_ids) == 2  # refused: nothing changed
    assert main([*base, "--force", "--reattach-subjects", "-q"]) == 0
    assert "2 sightings re-attached" in capsys.readouterr().out
    with Gallery(f"sqlite:///{data / 'gallery.db'}", data) as g:
        kept = subject_named(g, "suspect").detection_ids
        now = [g.detection(d)[0] for d in kept]
        assert sorted((r.frame_index, round(r.x1), round(r.y1)) for r in now) == boxes
        assert len(kept) == 2
    by_subject = ["query", "--subject", "suspect", "--by", "detection", "--data-dir", str(data)]
    assert main([*by_subject, "--k", "3"]) == 0
    assert str(kept[0]) in capsys.readouterr().out  # the subject searches, and finds itself
