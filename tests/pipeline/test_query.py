"""Querying a gallery built from real footage (vtest.avi frames 0-100, real models)."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import cv2
import numpy as np
import pytest
from sqlalchemy import func, select

import run_pipeline
from pipeline.query import run_query
from pipeline.query_input import read_frame
from storage.models import DetectionRow
from tests.conftest import where

pytestmark = pytest.mark.slow


def _rows(gallery):  # type: ignore[no-untyped-def]
    with gallery.session() as s:
        return list(s.scalars(select(DetectionRow).order_by(DetectionRow.id)))


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _walker_chain(rows, start, horizon: int = 100) -> set[int]:  # type: ignore[no-untyped-def]
    """Detection ids of the walker seen in ``start``, followed frame to frame by box overlap
    (the best IoU >= 0.3 in the next frame), forwards and backwards until the overlap breaks.
    This is how a person would check 'same walker in neighbouring frames' by eye."""
    by_frame: dict[int, list] = {}
    for r in rows:
        by_frame.setdefault(r.frame_index, []).append(r)
    chain = {start.id}
    for step in (1, -1):
        cur = start
        for f in range(start.frame_index + step, start.frame_index + step * (horizon + 1), step):
            box = (cur.x1, cur.y1, cur.x2, cur.y2)
            best = max(
                by_frame.get(f, []), key=lambda r: _iou(box, (r.x1, r.y1, r.x2, r.y2)), default=None
            )
            if best is None or _iou(box, (best.x1, best.y1, best.x2, best.y2)) < 0.3:
                break
            chain.add(best.id)
            cur = best
    return chain


def test_a_stored_crop_finds_itself_then_the_same_walker(vtest_gallery, vtest_path) -> None:  # type: ignore[no-untyped-def]
    _cfg, gallery, _summary, _ = vtest_gallery
    rows = _rows(gallery)
    checked = 0
    for frame_index in (30, 50, 70):
        # The biggest, most confident person in the frame: a clear query, as an analyst picks.
        cands = [r for r in rows if r.frame_index == frame_index and r.score > 0.6]
        query_row = max(cands, key=lambda r: (r.y2 - r.y1) * r.score)
        image = read_frame(vtest_path, frame_index)
        x1, y1, x2, y2 = (
            round(v) for v in (query_row.x1, query_row.y1, query_row.x2, query_row.y2)
        )
        result = run_query(gallery, [image[y1:y2, x1:x2]], k=11)
        assert result.hits[0].detection_id == query_row.id
        # the same box cut again (to a pixel): nearly the same vector
        assert result.hits[0].similarity > 0.93
        chain = _walker_chain(rows, query_row)
        same = sum(h.detection_id in chain for h in result.hits[1:])
        assert len(chain) >= 10, "the walker should be followable for 10+ frames"
        assert same >= 8, f"only {same}/10 next hits are the query's walker (frame {frame_index})"
        checked += 1
    assert checked == 3


def test_fusing_two_views_and_detection_queries(vtest_gallery, vtest_path) -> None:  # type: ignore[no-untyped-def]
    _cfg, gallery, _s, _ = vtest_gallery
    rows = _rows(gallery)
    start = max((r for r in rows if r.frame_index == 40), key=lambda r: (r.y2 - r.y1) * r.score)
    chain = _walker_chain(rows, start)
    later = max((r for r in rows if r.id in chain), key=lambda r: r.frame_index)
    crops = []
    for r in (start, later):
        img = read_frame(vtest_path, r.frame_index)
        crops.append(img[round(r.y1) : round(r.y2), round(r.x1) : round(r.x2)])
    fused = run_query(gallery, crops, k=4)
    assert {h.detection_id for h in fused.hits} <= chain  # the person's sightings rank on top
    for crop, row in zip(crops, (start, later), strict=True):  # each view alone finds itself
        alone = run_query(gallery, [crop], k=1)
        assert alone.hits[0].detection_id == row.id and alone.hits[0].similarity > 0.95
    by_id = run_query(gallery, [], k=1, detection_id=start.id)
    assert by_id.hits[0].detection_id == start.id and by_id.hits[0].similarity == pytest.approx(
        1, abs=1e-5
    )


def _cli(capsys, *argv: str) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    code = run_pipeline.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_table_exports_and_report(vtest_gallery, vtest_path, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    cfg, _gallery, _s, data_dir = vtest_gallery
    report, js, cs = tmp_path / "r.html", tmp_path / "r.json", tmp_path / "r.csv"
    code, out, _err = _cli(
        capsys,
        "query",
        "--by",
        "detection",
        "--frame",
        f"{vtest_path}:50",
        "--box",
        "560,170,600,270",
        "--k",
        "7",
        *where(cfg, data_dir),
        "--report",
        str(report),
        "--json",
        str(js),
        "--csv",
        str(cs),
        "--camera",
        "campus",
        "--from",
        "2",
        "--to",
        "+00:00:09",
    )
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["rank", "similarity", "camera"]
    assert len([ln for ln in lines if re.match(r"^\d+\s+0\.\d{4}\s+campus", ln)]) == 7
    assert re.search(r"\d\d:\d\d:\d\d\.\d{3}", out) and "embed" in out and "search" in out
    import csv
    import json

    hits = json.loads(js.read_text())["hits"]
    assert len(hits) == 7 and all(2 <= h["timestamp_s"] <= 9 for h in hits)
    assert [int(r["detection_id"]) for r in csv.DictReader(cs.open())] == [
        h["detection_id"] for h in hits
    ]

    page = report.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page), "report must be offline"
    assert page.count('class="hit"') == 7
    assert page.count('class="lightbox"') == 7  # a full frame per hit, click to enlarge

    class Checker(HTMLParser):
        void = frozenset({"img", "br", "meta", "link", "hr", "input"})

        def __init__(self) -> None:
            super().__init__()
            self.stack: list[str] = []
            self.imgs: list[str] = []

        def handle_starttag(self, tag, attrs) -> None:  # type: ignore[no-untyped-def]
            if tag == "img":
                self.imgs.append(dict(attrs)["src"])
            elif tag not in self.void:
                self.stack.append(tag)

        def handle_endtag(self, tag) -> None:  # type: ignore[no-untyped-def]
            assert self.stack and self.stack[-1] == tag, f"unbalanced </{tag}>"
            self.stack.pop()

    checker = Checker()
    checker.feed(page)
    assert checker.stack == []
    assert all(src.startswith("data:image/jpeg;base64,") for src in checker.imgs)


@pytest.mark.browser
def test_report_renders_in_chromium(vtest_gallery, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (make test installs it where apt-get can)")
    cfg, _g, _s, data_dir = vtest_gallery
    report = tmp_path / "r.html"
    code, _out, _err = _cli(
        capsys,
        "query",
        "--detection",
        "5",
        "--k",
        "5",
        *where(cfg, data_dir),
        "--report",
        str(report),
    )
    assert code == 0

    def screenshot(page: Path) -> np.ndarray:
        shot = page.with_suffix(".png")
        subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-quic",
                f"--user-data-dir={tmp_path / 'profile'}",
                "--window-size=1000,900",
                f"--screenshot={shot}",
                page.as_uri(),
            ],
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert shot.is_file()
        img = cv2.imread(str(shot))
        assert img is not None and img.shape[:2] == (900, 1000)
        return img

    # The same page with its images removed is the control: the thumbnails of people (query,
    # hits) must change a good part of what is drawn; a page whose images did not render would
    # look like the control.
    blank = tmp_path / "blank.html"
    blank.write_text(re.sub(r'src="data:image/[^"]+"', 'src=""', report.read_text()))
    full, control = screenshot(report), screenshot(blank)
    changed = np.abs(full.astype(int) - control.astype(int)).max(axis=2) > 40
    assert changed.mean() > 0.03


def _count(gallery) -> int:  # type: ignore[no-untyped-def]
    with gallery.session() as s:
        return int(s.scalar(select(func.count(DetectionRow.id))) or 0)


def test_user_errors_are_one_line_exit_2_and_change_nothing(
    vtest_gallery, vtest_path, tmp_path, capsys, caplog
) -> None:  # type: ignore[no-untyped-def]
    cfg, gallery, _s, data_dir = vtest_gallery
    before = _count(gallery)
    index_file = gallery.index_path(cfg.reid.name)
    index_bytes = index_file.read_bytes()
    good = tmp_path / "ok.jpg"
    cv2.imwrite(str(good), read_frame(vtest_path, 50)[170:270, 560:600])
    text = tmp_path / "notes.jpg"
    text.write_text("not a picture")
    tiny = tmp_path / "tiny.png"
    cv2.imwrite(str(tiny), np.zeros((3, 2, 3), np.uint8))
    empty_dir = tmp_path / "empty"
    d = where(cfg, data_dir)
    cases = [
        (["query", str(tmp_path / "missing.jpg"), *d], "does not exist"),
        (["query", str(text), *d], "not an image"),
        (["query", str(tiny), *d], "at least 8x8"),
        (["query", "--frame", f"{vtest_path}:10", "--box", "900,700,990,800", *d], "outside"),
        (["query", "--frame", f"{vtest_path}:10", "--box", "10,10,5,50", *d], "empty"),
        (["query", "--frame", f"{vtest_path}:99999", "--box", "1,1,50,90", *d], "no frame 99999"),
        (["query", str(good), "--data-dir", str(empty_dir)], "no gallery at"),
        (["query", str(good), "--reid", "hsv", *d], f"built with {cfg.reid.name}"),
        (["query", str(good), "--camera", "lobby", *d], "no camera lobby"),
        (["query", str(good), "--video", "other.mp4", *d], "no video 'other.mp4'"),
        (["query", "--detection", "99999999", *d], "no detection #99999999"),
        (["query", *d], "nothing to query"),
        (["query", str(good), "--detector", "x", *d], None),  # argparse: unknown flag
    ]
    for argv, needle in cases:
        try:
            code, _out, err = _cli(capsys, *argv)
        except SystemExit as exc:  # argparse's own usage errors
            code, err = int(exc.code or 0), capsys.readouterr().err
        assert code == 2, (argv, err)
        if needle is not None:
            assert err.count("\n") == 1 and needle in err, (argv, err)
    assert _count(gallery) == before
    assert index_file.read_bytes() == index_bytes


def test_a_damaged_index_is_rebuilt_from_the_rows(
    vtest_gallery, vtest_path, tmp_path, capsys, caplog
) -> None:  # type: ignore[no-untyped-def]
    """Damage a copy of the shared gallery's data directory (its index file; the SQLite file
    is copied with it, a PostgreSQL database is only read): no error, a warning, a rebuild
    from the rows and the same answer as the undamaged gallery gives."""
    cfg, gallery, _s, data_dir = vtest_gallery
    good = tmp_path / "ok.jpg"
    cv2.imwrite(str(good), read_frame(vtest_path, 50)[170:270, 560:600])
    asked = {"rerank": cfg.query.rerank, "expand": cfg.query.expand}  # as the CLI asks
    expected = [
        h.detection_id for h in run_query(gallery, [cv2.imread(str(good))], k=3, **asked).hits
    ]
    copy = tmp_path / "copy"
    shutil.copytree(data_dir, copy)
    damaged = copy / gallery.index_path(cfg.reid.name).relative_to(data_dir)
    damaged.write_bytes(b"\x00garbage")
    before = _count(gallery)
    code, out, _err = _cli(
        capsys, "query", str(good), "--k", "3", "--by", "detection", *where(cfg, copy)
    )
    assert code == 0 and "rebuilding it from the database" in caplog.text
    ids = [int(ln.split()[-1]) for ln in out.splitlines() if re.match(r"^\s*\d+\s+0\.", ln)]
    assert ids == expected
    assert _count(gallery) == before


def test_rerank_reorders_track_results_too(vtest_gallery, vtest_path) -> None:  # type: ignore[no-untyped-def]
    """--rerank under --by track: tracks come in the order of their first sighting in the
    re-ranked detection list (the top max(100, 4k) candidates re-ranked, the rest behind), not
    in the plain similarity order, which is what it silently returned before."""
    from pipeline.query import embedder_for
    from reid.rerank import rerank_order

    _cfg, gallery, _s, _ = vtest_gallery
    _embedder_id, embedder = embedder_for(gallery, None)
    rows = _rows(gallery)
    tracked = {r.id: r.track_id for r in rows}
    stored = [r for r in rows if r.embedding is not None]  # every box: cadence 1 here
    vectors = np.stack([np.frombuffer(r.embedding, np.float32) for r in stored])
    differs = 0
    for frame_index in (20, 45, 70, 90):
        row = max(
            (r for r in rows if r.frame_index == frame_index), key=lambda r: (r.y2 - r.y1) * r.score
        )
        img = read_frame(vtest_path, frame_index)
        crop = img[round(row.y1) : round(row.y2), round(row.x1) : round(row.x2)]
        k = 4
        # strays shown: the expectation below lists every key of the ranking
        by_track = run_query(gallery, [crop], k=k, rerank=True, by="track", strays=True)
        plain = run_query(gallery, [crop], k=k, by="track", strays=True)
        # the expectation from the rows alone: exact cosine order over every stored vector,
        # its first max(100, 4k) put in k-reciprocal order, the rest behind
        q = embedder.embed([crop])[0]
        order = np.argsort(-(vectors @ q), kind="stable")
        head, tail = order[:100], order[100:]
        head = head[rerank_order(q, vectors[head])]
        reranked = [(0.0, stored[int(j)].id) for j in [*head, *tail]]
        expected: list[object] = []
        for _sim, det_id in reranked:
            key = tracked[det_id] if tracked[det_id] is not None else ("det", det_id)
            if key not in expected:
                expected.append(key)
        got = [
            t.track_id if t.track_id is not None else ("det", t.best_detection_id)
            for t in by_track.tracks
        ]
        assert got == expected[:k]
        assert by_track.reranked
        differs += [t.track_id for t in plain.tracks] != [t.track_id for t in by_track.tracks]
    assert differs >= 1, "re-ranking never changed a track order: the test proves nothing"


@pytest.mark.slow
def test_a_query_process_starts_without_torch(vtest_gallery, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The analyst's CLI query: with the embedder's export cached (the ingest made it), a new
    process answers without importing torch or Ultralytics (about 2 s of start-up here)."""
    import sys

    from tests.conftest import where

    cfg, gallery, _summary, data_dir = vtest_gallery
    det, _video = gallery.detection(1)
    crop = cv2.imdecode(np.frombuffer(det.thumbnail, np.uint8), cv2.IMREAD_COLOR)
    query = tmp_path / "q.jpg"
    cv2.imwrite(str(query), crop)
    script = (
        "import sys; from cli import main; "
        f"code = main(['query', {str(query)!r}, *{where(cfg, data_dir)!r}, '--k', '3']); "
        "print('TORCH', 'torch' in sys.modules, 'ultralytics' in sys.modules, code)"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=300
    ).stdout
    assert "TORCH False False 0" in out
    assert out.count("campus") >= 3  # three hits printed
