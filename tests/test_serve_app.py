"""The analyst's workflow in `prowl serve`, for real: a uvicorn server on a free loopback port
over a gallery of vtest.avi (real detector and embedder), clips, refining, subjects, the
evidence zip, ingest from the page (with traversal attempts), a schema fuzz, and headless
Chromium driving the page."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from tests.test_serve import serving

httpx = pytest.importorskip("httpx")

pytestmark = pytest.mark.slow


def _write_clip(src: Path, out: Path, first: int, frames: int) -> Path:
    cap = cv2.VideoCapture(str(src))
    cap.set(cv2.CAP_PROP_POS_FRAMES, first)
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter.fourcc(*"MJPG"), 10.0, (768, 576))
    for _ in range(frames):
        ok, image = cap.read()
        assert ok
        writer.write(image)
    writer.release()
    cap.release()
    return out


@pytest.fixture(scope="module")
def app_env(
    cfg_default, yolo, default_embedder, vtest_path, tmp_path_factory
) -> Iterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """A writable gallery of vtest.avi [0, 8 s) and a server with ingest under ``root``."""
    from cli.web import create_app
    from pipeline.context import Models, RunContext
    from pipeline.ingest import ingest_video
    from storage.gallery import Gallery

    base = tmp_path_factory.mktemp("serve-app")
    data = base / "data"
    cfg = replace(cfg_default, data_dir=data, video=replace(cfg_default.video, end_s=8.0))
    root = base / "root"
    (root / "cam2").mkdir(parents=True)
    _write_clip(vtest_path, root / "cam2" / "entrance.avi", 300, 30)
    outside = _write_clip(vtest_path, base / "outside.avi", 400, 5)
    os.symlink(outside, root / "link-out.avi")  # a symlink leading out of the root
    os.symlink(base, root / "up")  # a folder symlink leading out of it
    gallery = Gallery(cfg.db_url, data)
    ingest_video(
        RunContext(cfg, gallery, Models(yolo, default_embedder)), vtest_path, camera_id="campus"
    )
    gallery.save_indexes()
    ingest_cfg = replace(cfg, video=replace(cfg.video, end_s=None))
    with serving(create_app(gallery, None, ingest_cfg, [root])) as url:
        yield {"url": url, "gallery": gallery, "root": root, "outside": outside, "cfg": cfg}
    gallery.close()


def export_zip(url: str, **request: Any) -> Any:
    """An evidence export as the page does it: start the job, follow its progress, fetch the
    zip. Returns the zip's response."""
    started = httpx.post(f"{url}/api/export", timeout=120, **request)
    assert started.status_code == 202, started.text
    job = started.json()
    seen = []
    deadline = time.monotonic() + 600
    while job["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
        job = httpx.get(f"{url}/api/exports/{job['id']}", timeout=30).json()
        seen.append((job["done"], job["total"]))
    assert job["status"] == "complete", job
    assert seen == sorted(seen)  # progress only goes forward
    return httpx.get(f"{url}{job['zip']}", timeout=120)


def _embedded_ids(gallery: Any, n: int) -> list[int]:
    from sqlalchemy import select

    from storage.models import DetectionRow

    with gallery.session() as s:
        return list(
            s.scalars(
                select(DetectionRow.id)
                .where(DetectionRow.embedding.is_not(None), DetectionRow.track_id.is_not(None))
                .order_by(DetectionRow.id)
                .limit(n)
            )
        )


def test_clip_is_cut_once_and_served_in_byte_ranges(app_env) -> None:  # type: ignore[no-untyped-def]
    url, gallery = app_env["url"], app_env["gallery"]
    det = _embedded_ids(gallery, 40)[-1]
    r = httpx.get(f"{url}/api/detections/{det}/clip", timeout=120)
    assert r.status_code == 200 and r.headers["content-type"] == "video/webm"
    assert r.headers["accept-ranges"] == "bytes" and len(r.content) > 10_000
    clip = app_env["cfg"].data_dir / "clips"
    (path,) = clip.glob(f"*-{det}-*.webm")
    inode = path.stat().st_ino
    part = httpx.get(f"{url}/api/detections/{det}/clip", headers={"Range": "bytes=100-1099"})
    assert part.status_code == 206 and part.content == r.content[100:1100]
    assert part.headers["content-range"] == f"bytes 100-1099/{len(r.content)}"
    assert path.stat().st_ino == inode  # served from the cache, not cut again (a new cut is
    # a new file renamed over it; reading it only marks it recently used)
    local = Path(str(path) + ".check.webm")
    local.write_bytes(r.content)
    cap = cv2.VideoCapture(str(local))
    frames = 0
    while cap.read()[0]:
        frames += 1
    cap.release()
    local.unlink()
    row, _video = gallery.detection(det)
    expected = min(row.frame_index, 20) + 1 + 20  # 2 s either side at 10 frames/s
    assert frames == expected, (frames, expected)
    assert httpx.get(f"{url}/api/detections/99999999/clip").status_code == 404
    # the viewer's clip: longer, at the source's own resolution (vtest is 768x576)
    long = httpx.get(f"{url}/api/detections/{det}/clip?seconds=6&source=true", timeout=120)
    assert long.status_code == 200
    local.write_bytes(long.content)
    cap = cv2.VideoCapture(str(local))
    size = (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    frames = 0
    while cap.read()[0]:
        frames += 1
    cap.release()
    local.unlink()
    assert size == (768, 576) and frames == min(row.frame_index, 60) + 1 + 60
    assert httpx.get(f"{url}/api/detections/{det}/clip?seconds=99").status_code == 422


def test_marks_subjects_and_search_by_subject(app_env) -> None:  # type: ignore[no-untyped-def]
    from pipeline.core.config import load_config
    from pipeline.query import run_query

    url, gallery = app_env["url"], app_env["gallery"]
    query = _embedded_ids(gallery, 60)[-1]
    one = {"detection_id": query, "k": 15, "by": "detection"}  # refining single sightings
    first = httpx.post(f"{url}/api/search", data=one).json()["hits"]
    others = [h["detection_id"] for h in first if h["detection_id"] != query]
    yes, no = others[:2], others[-2:]
    marked = {**one, "confirmed": ",".join(map(str, yes))}
    marked["rejected"] = ",".join(map(str, no))
    again = httpx.post(f"{url}/api/search", data=marked).json()["hits"]
    asked = load_config().query  # the server ranks as the CLI does
    cli = run_query(
        gallery,
        [],
        15,
        detection_id=query,
        confirmed=yes,
        rejected=no,
        rerank=asked.rerank,
        expand=asked.expand,
    )
    assert [h["detection_id"] for h in again] == [h.detection_id for h in cli.hits]
    assert not {h["detection_id"] for h in again} & set(no)

    saved = httpx.post(
        f"{url}/api/subjects",
        data={"name": "man in dark coat", "detection_ids": ",".join(map(str, [query, *yes]))},
    )
    assert saved.status_code == 200, saved.text
    sid = saved.json()["id"]
    listed = httpx.get(f"{url}/api/subjects").json()
    assert {"id": sid, "name": "man in dark coat", "sightings": 3, "case": None} in listed
    detail = httpx.get(f"{url}/api/subjects/{sid}").json()
    assert sorted(h["detection_id"] for h in detail["sightings"]) == sorted([query, *yes])
    by_subject = httpx.post(
        f"{url}/api/search", data={"subject_id": sid, "k": 10, "by": "detection"}
    ).json()
    assert {query, *yes} <= {h["detection_id"] for h in by_subject["hits"][:5]}
    for bad, status in (
        ({"name": "x", "detection_ids": "1,abc"}, 422),
        ({"name": "x", "detection_ids": "99999999"}, 400),
        ({"name": "", "detection_ids": "1"}, 422),
    ):
        r = httpx.post(f"{url}/api/subjects", data=bad)
        assert r.status_code == status and list(r.json()) == ["error"], r.text
    other = httpx.post(f"{url}/api/subjects", data={"name": "other", "detection_ids": str(query)})
    oid = other.json()["id"]
    renamed = httpx.patch(f"{url}/api/subjects/{oid}", data={"name": "man in dark coat"})
    assert renamed.status_code == 400 and "already named" in renamed.text  # names stay unique
    edited = httpx.patch(
        f"{url}/api/subjects/{oid}", data={"name": "second man", "case": "C-7", "analyst": "B"}
    ).json()
    assert edited == {"id": oid, "name": "second man", "case": "C-7", "analyst": "B"}
    assert httpx.get(f"{url}/api/subjects/{oid}").json()["case"] == "C-7"
    assert httpx.patch(f"{url}/api/subjects/99999", data={"name": "x"}).status_code == 404
    assert httpx.delete(f"{url}/api/subjects/{oid}").status_code == 200
    assert httpx.get(f"{url}/api/subjects/{oid}").status_code == 404
    assert httpx.post(f"{url}/api/search", data={"subject_id": 999}).status_code == 404
    assert httpx.post(f"{url}/api/search", data={"rejected": "1"}).status_code == 422


def test_evidence_zip_holds_what_an_investigator_needs(app_env, vtest_path) -> None:  # type: ignore[no-untyped-def]
    from pipeline.core.files import sha256_of

    url, gallery = app_env["url"], app_env["gallery"]
    query = _embedded_ids(gallery, 30)[-1]
    row, _video = gallery.detection(query)
    r = export_zip(
        url,
        files={"image": ("suspect.jpg", bytes(row.thumbnail), "image/jpeg")},
        data={"k": "6", "camera": "campus", "by": "detection"},
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    assert "attachment" in r.headers["content-disposition"]
    z = zipfile.ZipFile(io.BytesIO(r.content))
    names = set(z.namelist())
    rows = list(csv.DictReader(io.StringIO(z.read("hits.csv").decode())))
    assert len(rows) == 6 and rows[0]["detection_id"] == str(query)
    hits = json.loads(z.read("hits.json"))["hits"]
    assert [h["detection_id"] for h in hits] == [int(r["detection_id"]) for r in rows]
    for h in hits:
        stem = f"rank{h['rank']:03d}-det{h['detection_id']}"
        assert {f"thumbnails/{stem}.jpg", f"frames/{stem}.jpg", f"clips/{stem}.webm"} <= names
        frame = cv2.imdecode(np.frombuffer(z.read(f"frames/{stem}.jpg"), np.uint8), 1)
        assert frame is not None and frame.shape[1] == 640  # the whole frame, boxed
    assert "query/query-1.jpg" in names
    asked = json.loads(z.read("query.json"))
    assert asked["k"] == 6 and asked["camera"] == "campus" and asked["image"] is True
    videos = json.loads(z.read("videos.json"))["videos"]
    assert videos == [
        {
            **videos[0],
            "name": "vtest.avi",
            "sha256": sha256_of(vtest_path),
            "size_bytes": vtest_path.stat().st_size,
        }
    ]
    sums = dict(
        reversed(line.split("  ", 1)) for line in z.read("SHA256SUMS").decode().splitlines()
    )
    assert set(sums) == names - {"SHA256SUMS"}
    assert all(hashlib.sha256(z.read(n)).hexdigest() == d for n, d in sums.items())
    page = z.read("summary.html").decode()
    assert "one time axis" in page and "Journey, in time order" in page
    assert page.count("data:image/jpeg;base64,") >= 12
    assert "/api/" not in page and 'src="http' not in page  # opens offline, on its own


def _wait_for(url: str, job_id: int, timeout_s: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    seen_running = False
    while time.monotonic() < deadline:
        job = httpx.get(f"{url}/api/jobs/{job_id}").json()
        seen_running |= job["status"] == "running" and job["frames_done"] > 0
        if job["status"] not in ("queued", "running"):
            job["seen_running"] = seen_running
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


def test_ingest_from_the_page_only_under_the_root(app_env) -> None:  # type: ignore[no-untyped-def]
    url, root = app_env["url"], app_env["root"]
    files = httpx.get(f"{url}/api/ingest/files").json()["files"]
    assert [f["name"] for f in files] == ["cam2/entrance.avi"]  # symlinks out are not listed
    for attempt in (
        "../outside.avi",
        "..%2Foutside.avi",
        "cam2/../../outside.avi",
        str(app_env["outside"]),
        "link-out.avi",
        "up/outside.avi",
        "up/root/cam2/../../outside.avi",
        "/etc/passwd",
        "cam2",
        "cam2/missing.avi",
    ):
        r = httpx.post(f"{url}/api/ingest", data={"file": attempt})
        assert r.status_code == 403, (attempt, r.text)
        assert "outside" not in r.json()["error"] or attempt in r.json()["error"]
    assert httpx.get(f"{url}/api/jobs").json() == []

    videos_before = len(httpx.get(f"{url}/api/videos").json())
    job = httpx.post(f"{url}/api/ingest", data={"file": "cam2/entrance.avi", "camera": "door"})
    assert job.status_code == 200, job.text
    done = _wait_for(url, job.json()["id"])
    assert done["status"] == "complete" and done["frames_total"] == 30, done
    assert done["frames_done"] == 30 and done["people"] > 0
    videos = httpx.get(f"{url}/api/videos").json()
    assert len(videos) == videos_before + 1
    new = next(v for v in videos if v["camera"] == "door")
    assert new["runs"] == ["complete"] and new["detections"] > 0
    tracks = httpx.get(f"{url}/api/videos/{new['id']}/tracks").json()
    assert tracks and all(t["first_s"] <= t["last_s"] <= 3.0 for t in tracks)
    # the server's index caught up: a new sighting finds itself
    boxes = httpx.get(f"{url}/api/videos/{new['id']}/frames/10/detections").json()
    found = httpx.post(
        f"{url}/api/search", data={"detection_id": boxes[0]["detection_id"], "k": 3}
    ).json()["hits"]
    assert found[0]["camera"] == "door"

    upload = (root / "cam2" / "entrance.avi").read_bytes()
    r = httpx.post(
        f"{url}/api/ingest/upload",
        files={"video": ("lobby cam.avi", upload, "video/x-msvideo")},
        data={"camera": "lobby"},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    assert _wait_for(url, r.json()["id"])["status"] == "complete"
    bad = httpx.post(
        f"{url}/api/ingest/upload", files={"video": ("x.avi", b"not a video", "video/x-msvideo")}
    )
    assert bad.status_code == 400 and "x.avi" in bad.json()["error"]
    assert (
        httpx.post(
            f"{url}/api/ingest/upload",
            files={"video": ("x.exe", b"MZ", "application/x-msdownload")},
        ).status_code
        == 415
    )
    # a JPEG named .avi opens in OpenCV as one picture, not a video: refused before storing
    _ok, jpeg = cv2.imencode(".jpg", np.full((64, 64, 3), 128, np.uint8))
    fake = httpx.post(
        f"{url}/api/ingest/upload", files={"video": ("y.avi", jpeg.tobytes(), "video/x-msvideo")}
    )
    assert fake.status_code == 400 and "y.avi" in fake.json()["error"], fake.text
    uploads = app_env["cfg"].data_dir / "uploads"
    kept = [p for p in uploads.rglob("*") if p.is_file()]
    assert [p.name for p in kept] == ["lobby_cam.avi"]  # the refused ones are gone
    lobby = next(v for v in httpx.get(f"{url}/api/videos").json() if v["camera"] == "lobby")
    assert lobby["start_time"] is None  # the upload's name carries no made-up footage time
    # the same content uploaded again, under other names and without a camera: the same
    # video, kept once, never a new camera named after a random prefix
    videos_now = len(httpx.get(f"{url}/api/videos").json())
    for name in ("again.avi", "lobby cam.avi"):
        r = httpx.post(
            f"{url}/api/ingest/upload", files={"video": (name, upload, "video/x-msvideo")}
        )
        assert r.status_code == 200, r.text
        assert _wait_for(url, r.json()["id"])["status"] == "complete"
    assert len(httpx.get(f"{url}/api/videos").json()) == videos_now
    assert [p.name for p in uploads.rglob("*") if p.is_file()] == ["lobby_cam.avi"]
    # a new upload without a camera is named after its own file, not a random prefix
    clip = _write_clip(app_env["outside"], uploads.parent / "side.avi", 0, 5)
    r = httpx.post(
        f"{url}/api/ingest/upload",
        files={"video": ("side door.avi", clip.read_bytes(), "video/x-msvideo")},
    )
    assert r.status_code == 200 and r.json()["camera"] == "side_door"


def test_sightings_another_process_adds_are_found_without_a_restart(
    app_env, yolo, default_embedder
) -> None:  # type: ignore[no-untyped-def]
    """A CLI ingest of another camera while the server runs: searches filtered to it find
    its people at once (the server sees the gallery's change counter move and catches its
    index up), where they used to come back empty until a restart."""
    from pipeline.context import Models, RunContext
    from pipeline.ingest import ingest_video
    from storage.gallery import Gallery

    url, cfg = app_env["url"], app_env["cfg"]
    clip = _write_clip(app_env["outside"], cfg.data_dir.parent / "late.avi", 0, 5)
    with Gallery(cfg.db_url, cfg.data_dir) as other:  # another connection, as another process
        summary = ingest_video(
            RunContext(cfg, other, Models(yolo, default_embedder)), clip, camera_id="late"
        )
        assert summary.detections > 0
        row = other.frame_detections(other.videos()[-1].id, 2)[0]
    r = httpx.post(
        f"{url}/api/search",
        files={"image": ("q.jpg", bytes(row.thumbnail), "image/jpeg")},
        data={"camera": "late", "k": "5"},
        timeout=120,
    )
    assert r.status_code == 200, r.text
    hits = r.json()["hits"]
    assert hits and all(h["camera"] == "late" for h in hits)


def test_healthz_stays_answered_under_searches_an_ingest_and_an_export(app_env) -> None:  # type: ignore[no-untyped-def]
    """16 clients searching while an ingest job and a 20-clip evidence export run: every
    search is answered, and /healthz answers while the export is still being made."""
    url, gallery = app_env["url"], app_env["gallery"]
    crop = bytes(gallery.detection(_embedded_ids(gallery, 10)[-1])[0].thumbnail)
    job = httpx.post(f"{url}/api/ingest", data={"file": "cam2/entrance.avi", "camera": "load"})
    assert job.status_code == 200, job.text
    export = httpx.post(
        f"{url}/api/export", data={"detection_id": str(_embedded_ids(gallery, 5)[-1]), "k": "20"}
    )
    assert export.status_code == 202, export.text
    export_id = export.json()["id"]
    answers: list[int] = []

    def client() -> None:
        for _ in range(2):
            r = httpx.post(
                f"{url}/api/search",
                files={"image": ("q.jpg", crop, "image/jpeg")},
                data={"k": "10"},
                timeout=600,
            )
            answers.append(r.status_code)

    clients = [threading.Thread(target=client) for _ in range(16)]
    for t in clients:
        t.start()
    health: list[str] = []  # the export's status at each /healthz answer
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        assert httpx.get(f"{url}/healthz", timeout=30).status_code == 200
        status = httpx.get(f"{url}/api/exports/{export_id}", timeout=30).json()["status"]
        health.append(status)
        if status in ("complete", "failed") and not any(t.is_alive() for t in clients):
            break
        time.sleep(0.1)
    for t in clients:
        t.join()
    assert answers == [200] * 32
    assert health[-1] == "complete"
    assert "running" in health  # healthz answered while the export was being made
    assert _wait_for(url, job.json()["id"])["status"] == "complete"


def test_api_fuzzed_from_its_schema_gives_no_server_error(app_env) -> None:  # type: ignore[no-untyped-def]
    """Every operation of the OpenAPI schema, called with generated requests (schemathesis):
    no 5xx and no traceback, whatever comes in."""
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings

    url = app_env["url"]
    schema = schemathesis.openapi.from_dict(httpx.get(f"{url}/openapi.json").json())
    failures: list[str] = []
    calls: list[str] = []

    def fuzz(strategy: Any) -> None:
        @settings(
            max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        @given(strategy)
        def check(case: Any) -> None:
            response = case.call(base_url=url, timeout=60)
            calls.append(f"{case.method} {case.path}")
            if response.status_code >= 500 or b"Traceback" in response.content:
                failures.append(f"{case.method} {case.formatted_path}: {response.status_code}")

        check()

    operations = [r.ok() for r in schema.get_all_operations()]
    for operation in operations:
        if operation.path != "/api/export":  # valid calls cut clips; checked in its own test
            fuzz(operation.as_strategy())
    assert len(set(calls)) == len(operations) - 1 and len(calls) > 200
    assert failures == [], failures


def test_browser_upload_open_mark_search_again_export(app_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium (`make browser` installs Debian's)")
    playwright = pytest.importorskip("playwright.sync_api")
    url, gallery = app_env["url"], app_env["gallery"]
    query = _embedded_ids(gallery, 20)[-1]
    row, _video = gallery.detection(query)
    crop = tmp_path / "suspect.jpg"
    crop.write_bytes(bytes(row.thumbnail))
    shots = Path(os.environ.get("PROWL_SCREENSHOTS", tmp_path))
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        # Under the server's Content-Security-Policy the pages' own scripts, styles, images
        # and clips all load: a search and the gallery page, with no CSP violation reported.
        strict = browser.new_page()
        violations: list[str] = []
        strict.on(
            "console",
            lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
        )
        strict.on("pageerror", lambda e: violations.append(str(e)))
        strict.goto(url)
        strict.set_input_files("#image", str(crop))
        strict.click("#go")
        strict.wait_for_selector("#grid .hit img")
        strict.goto(f"{url}/gallery")
        strict.wait_for_selector("#videos tbody tr")
        assert violations == []
        strict.close()
        # The walk below waits with Playwright's string predicates, which the CSP (rightly)
        # forbids to evaluate: that page bypasses it.
        page = browser.new_page(
            viewport={"width": 1280, "height": 900}, accept_downloads=True, bypass_csp=True
        )
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)
        page.set_input_files("#image", str(crop))
        page.fill("input[name=k]", "12")
        page.select_option("select[name=by]", "detection")  # single sightings, not appearances
        page.click("#go")
        page.wait_for_selector("#grid .hit")
        cards = page.locator("#grid .hit")
        assert cards.count() == 12
        assert cards.first.get_attribute("data-detection") == str(query)
        assert page.locator("#timelines svg rect.bar").count() == 12
        # open a hit: the full frame and its clip, playing
        cards.nth(1).locator("img").click()
        page.wait_for_function(
            "document.getElementById('viewframe').naturalWidth > 0 && "
            "document.getElementById('viewclip').readyState >= 2",
            timeout=120_000,
        )
        assert page.evaluate("document.getElementById('viewframe').naturalWidth") == 768
        page.wait_for_function("document.getElementById('viewclip').currentTime > 0")
        page.screenshot(path=str(shots / "prowl-serve-hit.png"))
        page.mouse.click(5, 5)  # outside the frame: closes the viewer
        # mark: 2nd is the person, last is not; search again
        rejected = cards.nth(11).get_attribute("data-detection")
        cards.nth(1).locator("button.yes").click()
        cards.nth(11).locator("button.no").click()
        assert "1 the person, 1 not" in page.inner_text("#marks")
        page.click("#go")
        page.wait_for_function(
            f"![...document.querySelectorAll('#grid .hit')].some("
            f"(c) => c.dataset.detection === '{rejected}')"
        )
        page.fill("#subjectname", "browser subject")
        page.click("#savesubject")
        page.wait_for_function("document.getElementById('status').textContent.includes('holds')")
        with page.expect_download(timeout=300_000) as download:
            page.click("#export")
        z = zipfile.ZipFile(download.value.path())
        assert {"summary.html", "hits.csv", "SHA256SUMS"} <= set(z.namelist())
        # pick a person on a stored frame
        page.click("#pickbox summary")
        page.wait_for_selector("#picker button.box")
        picked = page.locator("#picker button.box").first.get_attribute("data-detection")
        page.locator("#picker button.box").first.click()
        page.wait_for_function(
            f"document.getElementById('querying').textContent.includes('#{picked} ') && "
            "document.getElementById('status').textContent.includes(' ms')"
        )
        top = int(page.locator("#grid .hit").first.get_attribute("data-detection") or 0)
        tracks = gallery.track_ids([top, int(picked or 0)])
        # the picked sighting, or (when the tracking cadence left it without its own vector,
        # so its track's pooled vector was the query) a sighting of its track
        assert top == int(picked or 0) or tracks[top] == tracks[int(picked or 0)] is not None
        page.screenshot(path=str(shots / "prowl-serve-search.png"), full_page=True)
        page.goto(f"{url}/gallery")
        page.wait_for_selector("#videos tbody tr")
        page.locator("#videos tbody tr").first.click()
        page.wait_for_selector("#tracks img")
        rows = page.locator("#videos tbody tr").count()
        page.select_option("#files", "cam2/entrance.avi")
        page.fill("#ingest input[name=camera]", "browser-cam")
        page.click("#ingest button")
        page.wait_for_selector("#jobs tbody tr[data-status=complete]", timeout=300_000)
        page.wait_for_function(f"document.querySelectorAll('#videos tbody tr').length > {rows}")
        assert "browser-cam" in page.inner_text("#videos")
        page.screenshot(path=str(shots / "prowl-serve-gallery.png"), full_page=True)
        browser.close()
    assert errors == []
