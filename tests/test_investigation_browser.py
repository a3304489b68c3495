"""The analyst's path across two cameras in a real browser (headless Chromium driving
`prowl serve` over the demo's two cameras, pipeline/demo.py): a date-time window, one
cross-camera timeline, find-similar from a hit, per-camera answers and "other cameras only",
the viewer's keys, and the layout at 1024 and 1920 px. Screenshots of each step go under
$PROWL_SCREENSHOTS (default: the test's temporary folder)."""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import longest_appearance
from tests.test_serve import serving

pytestmark = pytest.mark.slow


def _walker_crop(gallery: Any, out: Path) -> Path:
    """A crop of the longest appearance on camera campus (its middle sighting)."""
    _track, rows = longest_appearance(gallery, "campus")
    out.write_bytes(bytes(rows[len(rows) // 2].thumbnail))
    return out


def _bars(page: Any) -> list[dict[str, Any]]:
    return page.evaluate(  # type: ignore[no-any-return]
        "[...document.querySelectorAll('#timelines svg.axis rect.bar')].map((r) => ({"
        "camera: r.dataset.camera, start: Number(r.dataset.start),"
        " x: Number(r.getAttribute('x'))}))"
    )


def _searched_with(page: Any, detection: str | None) -> None:
    """Wait until the search from ``detection`` has answered: its id is in the query line and
    the status holds the answer's timing, not "searching…" (the old hits stay on the page
    until then, so waiting for a hit alone can act on the previous answer)."""
    page.wait_for_function(
        f"document.getElementById('querying').textContent.includes('#{detection} ') && "
        "document.getElementById('status').textContent.includes(' ms')"
    )


def test_analyst_path_across_two_cameras(two_cameras, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium (`make browser` installs Debian's)")
    playwright = pytest.importorskip("playwright.sync_api")
    from cli.web import create_app

    cfg, gallery, _data = two_cameras
    crop = _walker_crop(gallery, tmp_path / "suspect.jpg")
    shots = Path(os.environ.get("PROWL_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    with serving(create_app(gallery, None, cfg, [])) as url, playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1024, "height": 800}, bypass_csp=True)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(url)
        assert page.evaluate("document.documentElement.scrollWidth") <= 1024  # nothing spills

        # 1. a date-time window that holds both cameras (camera b starts 15:44:30)
        page.set_input_files("#image", str(crop))
        page.fill("input[name=from]", "2026-11-25 15:44:00")
        page.fill("input[name=to]", "15:44:45")
        page.click("#go")
        page.wait_for_selector("#grid .hit")
        page.screenshot(path=str(shots / "investigate-1-window.png"), full_page=True)
        cards = page.locator("#grid .hit")
        assert "appearances" in page.inner_text("#status")
        assert page.locator("#querying img").count() == 1  # the uploaded crop beside the hits

        # 2. one timeline: both cameras' bars on one scale, x growing with time
        bars = _bars(page)
        assert {b["camera"] for b in bars} == {"campus", "campus-b"}
        by_time = sorted(bars, key=lambda b: b["start"])
        assert [b["x"] for b in by_time] == sorted(b["x"] for b in bars)
        last_a = max(b["x"] for b in bars if b["camera"] == "campus")
        first_b = min(b["x"] for b in bars if b["camera"] == "campus-b")
        assert first_b > last_a  # camera b recorded 30 s later: all of it to the right
        assert page.locator("#journey tr.pick").count() == cards.count()

        # 3. find similar from a hit (a campus appearance)
        first = page.locator("#grid .hit[data-camera=campus]").first
        picked = first.get_attribute("data-detection")
        first.locator("button.similar").click()
        _searched_with(page, picked)
        page.wait_for_selector(f"#grid .hit[data-detection='{picked}']")
        page.screenshot(path=str(shots / "investigate-2-similar.png"), full_page=True)

        # 4. per camera, then other cameras only: the other camera's appearance comes first
        page.fill("input[name=per_camera]", "2")
        page.click("#go")
        page.wait_for_function("document.getElementById('status').textContent.includes('ms')")
        page.wait_for_function(
            "document.querySelectorAll('#grid .hit').length > 0 && "
            "document.querySelectorAll('#grid .hit').length <= 4"
        )
        cams = [c.get_attribute("data-camera") for c in page.locator("#grid .hit").all()]
        assert sorted(cams) == ["campus", "campus", "campus-b", "campus-b"]
        page.fill("input[name=per_camera]", "")
        page.check("input[name=other_cameras]")
        page.click("#go")
        page.wait_for_function(
            "[...document.querySelectorAll('#grid .hit')].length > 0 && "
            "[...document.querySelectorAll('#grid .hit')]"
            ".every((c) => c.dataset.camera === 'campus-b')"
        )
        assert page.locator("#grid .hit").first.get_attribute("data-camera") == "campus-b"
        page.screenshot(path=str(shots / "investigate-3-other-cameras.png"), full_page=True)

        # 5. the viewer: open, next, mark with a key, close with Esc
        page.locator("#grid .hit img").first.click()
        page.wait_for_selector("#viewer.open")
        assert page.inner_text("#viewcap").startswith("#1 ")
        page.keyboard.press("ArrowRight")
        page.wait_for_function("document.getElementById('viewcap').textContent.startsWith('#2 ')")
        page.keyboard.press("y")
        assert "1 the person" in page.inner_text("#marks")
        page.screenshot(path=str(shots / "investigate-4-viewer.png"))
        page.keyboard.press("Escape")
        assert not page.evaluate("document.getElementById('viewer').classList.contains('open')")
        assert page.locator("#grid .hit.confirmed").count() == 1

        # 5b. find similar from a paused frame of the viewer: click a stored box ...
        page.uncheck("input[name=other_cameras]")
        page.locator("#grid .hit img").first.click()
        page.wait_for_selector("#viewer.open")
        page.wait_for_function(
            "document.getElementById('viewclip').readyState >= 2", timeout=120_000
        )
        page.keyboard.press("p")
        page.wait_for_selector("#viewboxes button.box")
        box = page.locator("#viewboxes button.box").first
        chosen = box.get_attribute("data-detection")
        box.click()
        _searched_with(page, chosen)
        top = int(page.locator("#grid .hit").first.get_attribute("data-detection") or 0)
        same = gallery.track_ids([top, int(chosen or 0)])
        assert top == int(chosen or 0) or same[top] == same[int(chosen or 0)] is not None
        # ... or drag a rectangle round a person: cropped in the browser, searched as an image
        page.locator("#grid .hit img").first.click()
        page.wait_for_function(
            "document.getElementById('viewclip').readyState >= 2", timeout=120_000
        )
        page.keyboard.press("p")
        page.wait_for_selector("#viewboxes button.box")
        target = page.locator("#viewboxes button.box").first.bounding_box()
        over = page.locator("#viewboxes").bounding_box()
        assert target is not None and over is not None
        page.mouse.move(target["x"] - 3, target["y"] - 3)  # just outside the box's corner
        page.mouse.down()
        page.mouse.move(target["x"] + target["width"] + 3, target["y"] + target["height"] + 3)
        page.mouse.up()
        page.wait_for_function(
            "document.getElementById('image').files.length === 1 && "
            "document.getElementById('status').textContent.includes('appearances')"
        )
        assert not page.evaluate("document.getElementById('viewer').classList.contains('open')")
        page.screenshot(path=str(shots / "investigate-4b-dragged.png"), full_page=True)
        # ... and from the gallery page: every track links to a search from it
        page.goto(f"{url}/gallery")
        page.locator("#videos tbody tr").first.click()
        link = page.locator("#tracks a.similar").first
        best = (link.get_attribute("href") or "").split("=")[-1]
        link.click()
        _searched_with(page, best)
        page.wait_for_selector("#grid .hit")

        # 6. by clothing colour alone: no crop, "someone in a red top"
        page.click("#clearquery")
        page.fill("input[name=from]", "")
        page.fill("input[name=to]", "")
        page.select_option("select[name=upper]", "red")
        page.click("#go")
        page.wait_for_function(
            "document.getElementById('status').textContent.includes('clothing colour')"
        )
        uppers = page.evaluate(
            "[...document.querySelectorAll('#grid .hit')].map((c) =>"
            " [...c.querySelectorAll('.chips .upper .chip')].map((x) => x.textContent))"
        )
        assert uppers and all("red" in u for u in uppers)  # each card says why it is there
        page.screenshot(path=str(shots / "investigate-5-colour.png"), full_page=True)
        page.select_option("select[name=upper]", "")
        walker = page.locator("#grid .hit").first.get_attribute("data-detection")
        page.click("#clearquery")
        # back to a person, to keep marking; while the search runs the old hits are dimmed
        # and cannot be marked, so a mark never lands on the previous answer
        assert page.evaluate(
            f"(() => {{ findSimilar({walker}); const old = [...document.querySelectorAll("
            "'#grid.searching .hit')]; return old.length > 0 && old.every((c) => "
            "getComputedStyle(c).pointerEvents === 'none'); })()"
        )
        _searched_with(page, walker)  # else a late answer overwrites the save's status line
        assert not page.evaluate("document.getElementById('grid').classList.contains('searching')")
        page.wait_for_selector("#grid .hit")
        page.locator("#grid .hit button.yes").first.click()

        # 7. a case: the confirmed sighting saved as a subject with its case and analyst,
        # carried into the evidence zip; then renamed and deleted from the page
        page.fill("#subjectname", "red jacket")
        page.fill("#casename", "2026-114 bag theft")
        page.fill("#analyst", "A. Analyst")
        page.click("#savesubject")
        page.wait_for_function("document.getElementById('status').textContent.includes('holds')")
        page.select_option("#subject", label="red jacket (1) · 2026-114 bag theft")
        page.wait_for_function(
            "document.getElementById('subjectinfo').textContent.includes('A. Analyst')"
        )
        page.fill("input[name=k]", "3")
        with page.expect_download(timeout=300_000) as download:
            page.click("#export")
        z = zipfile.ZipFile(download.value.path())
        case = json.loads(z.read("case.json"))
        assert case["case"] == "2026-114 bag theft" and case["analyst"] == "A. Analyst"
        assert (
            case["subject"] == "red jacket"
            and "2026-114 bag theft" in z.read("summary.html").decode()
        )
        page.once("dialog", lambda d: d.accept("man in red jacket"))
        page.click("#renamesubject")
        page.wait_for_function(
            "document.getElementById('subjectinfo').textContent.includes('man in red jacket')"
        )
        page.once("dialog", lambda d: d.accept())
        page.click("#deletesubject")
        page.wait_for_function("document.getElementById('subject').options.length === 1")
        page.screenshot(path=str(shots / "investigate-6-case.png"), full_page=True)

        # 8. wide screens too
        page.set_viewport_size({"width": 1920, "height": 1000})
        assert page.evaluate("document.documentElement.scrollWidth") <= 1920
        page.screenshot(path=str(shots / "investigate-7-wide.png"), full_page=True)
        icon = page.request.get(f"{url}/favicon.ico")
        assert icon.status == 200 and "svg" in icon.headers["content-type"]
        browser.close()
    assert errors == []
