"""`prowl serve` for real: a uvicorn server on a free loopback port over the vtest gallery,
answering through the same query function as the CLI, and refusing what it must refuse."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

httpx = pytest.importorskip("httpx")
uvicorn = pytest.importorskip("uvicorn")


@contextmanager
def serving(app: Any) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _crop_of(gallery: Any, detection_id: int) -> bytes:
    row, _video = gallery.detection(detection_id)
    return bytes(row.thumbnail)


@pytest.mark.slow
def test_upload_a_crop_and_get_the_cli_answer(served) -> None:  # type: ignore[no-untyped-def]
    from pipeline.core.config import load_config
    from pipeline.query import run_query

    url, gallery = served
    jpeg = _crop_of(gallery, 5)
    r = httpx.post(
        f"{url}/api/search",
        files={"image": ("q.jpg", jpeg, "image/jpeg")},
        data={"k": "10", "by": "detection"},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    hits = body["hits"]
    assert len(hits) == 10 and hits[0]["detection_id"] == 5 and hits[0]["similarity"] > 0.9
    crop = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    asked = load_config().query  # the server ranks as the CLI does: expanded, re-ranked
    assert asked.rerank and asked.expand > 0
    cli = run_query(gallery, [crop], 10, rerank=asked.rerank, expand=asked.expand)
    assert [h["detection_id"] for h in hits] == [h.detection_id for h in cli.hits]
    plain = run_query(gallery, [crop], 10)  # by cosine alone the order differs
    assert [h.detection_id for h in plain.hits] != [h.detection_id for h in cli.hits]
    assert all("/" not in h["video"] for h in hits)  # ids and names, never paths

    thumb = httpx.get(f"{url}{hits[1]['thumbnail']}")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert thumb.content == _crop_of(gallery, hits[1]["detection_id"])

    frame = httpx.get(f"{url}{hits[1]['frame_image']}", timeout=60)
    assert frame.status_code == 200 and frame.headers["content-type"] == "image/jpeg"
    full = cv2.imdecode(np.frombuffer(frame.content, np.uint8), cv2.IMREAD_COLOR)
    assert full.shape == (576, 768, 3)  # the whole source frame, not the crop
    x1, y1, x2, _y2 = (round(v) for v in hits[1]["box"])
    edge = full[y1 - 1 : y1 + 2, x1 + 3 : x2 - 3].reshape(-1, 3).mean(axis=0)
    assert edge[2] > 150 and edge[0] < 110  # the red box is drawn where the sighting is
    assert httpx.get(f"{url}/api/detections/999999/frame").status_code == 404

    answer = httpx.post(  # by default, appearances: the CLI's default too
        f"{url}/api/search",
        files={"image": ("q.jpg", jpeg, "image/jpeg")},
        data={"k": "5"},
        timeout=60,
    ).json()
    by_track = answer["hits"]
    assert answer["by"] == "track" and len({h["track_id"] for h in by_track}) == len(by_track)
    cli_tracks = run_query(gallery, [crop], 5, rerank=asked.rerank, expand=asked.expand, by="track")
    assert [h["detection_id"] for h in by_track] == [t.best_detection_id for t in cli_tracks.tracks]
    for h, t in zip(by_track, cli_tracks.tracks, strict=True):
        assert h["appearance"]["sightings"] == t.sightings
        assert h["appearance"]["enter_s"] == round(t.first_s, 3) <= h["time_s"]
    assert sorted(s["rank"] for s in answer["journey"]) == [h["rank"] for h in by_track]

    page = httpx.get(url)
    assert page.status_code == 200 and "campus" in page.text and "<form" in page.text
    videos = httpx.get(f"{url}/api/videos").json()
    assert videos and videos[0]["name"] == "vtest.avi" and "path" not in videos[0]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("files", "data", "status", "words"),
    [
        ({"image": ("q.jpg", b"not an image", "image/jpeg")}, {}, 400, "not a readable image"),
        ({"image": ("q.txt", b"hello", "text/plain")}, {}, 415, "JPEG, PNG"),
        ({"image": ("q.jpg", b"\xff" * (10 << 20 | 1), "image/jpeg")}, {}, 413, "over 10 MB"),
        (
            {
                "image": (
                    "q.png",
                    cv2.imencode(".png", np.zeros((4, 4, 3), np.uint8))[1].tobytes(),
                    "image/png",
                )
            },
            {},
            400,
            "at least",
        ),
        ({"image": ("q.jpg", b"x", "image/jpeg")}, {"k": "0"}, 422, "k"),
        ({"image": ("q.jpg", b"x", "image/jpeg")}, {"by": "face"}, 422, "by"),
        ({}, {}, 422, "image"),
        # the same check, in the same words, as the CLI's (pipeline.query.QuerySpec)
        ({}, {"detection_id": "1", "from_s": "5", "to_s": "1"}, 422, "ends before it starts"),
    ],
)
def test_bad_requests_get_one_message(served, files, data, status, words) -> None:  # type: ignore[no-untyped-def]
    url, _gallery = served
    r = httpx.post(f"{url}/api/search", files=files or None, data=data, timeout=60)
    assert r.status_code == status, r.text
    body = r.json()
    assert list(body) == ["error"] and words in body["error"] and "Traceback" not in r.text


@pytest.mark.slow
def test_no_paths_no_cross_site_posts(served) -> None:  # type: ignore[no-untyped-def]
    url, gallery = served
    for path in (
        "/api/detections/..%2F..%2F..%2Fetc%2Fpasswd/thumbnail",
        "/api/detections/%2e%2e/thumbnail",
        "/../../etc/passwd",
        "/api/detections/999999999/thumbnail",
        "/static/..%2f..%2fgallery.db",
    ):
        r = httpx.get(f"{url}{path}")
        assert r.status_code in (404, 422), (path, r.status_code)
        assert "root:" not in r.text and "SQLite" not in r.text
    jpeg = _crop_of(gallery, 5)
    r = httpx.post(
        f"{url}/api/search",
        files={"image": ("q.jpg", jpeg, "image/jpeg")},
        headers={"Origin": "http://evil.example"},
    )
    assert r.status_code == 403 and "cross-site" in r.json()["error"]
    same = httpx.post(
        f"{url}/api/search", files={"image": ("q.jpg", jpeg, "image/jpeg")}, headers={"Origin": url}
    )
    assert same.status_code == 200


@pytest.mark.slow
def test_token_on_every_request(vtest_gallery) -> None:  # type: ignore[no-untyped-def]
    from cli.web import create_app

    _cfg, gallery, _summary, _data = vtest_gallery
    token = "t0ken-" + "x" * 20
    with serving(create_app(gallery, token)) as url:
        assert httpx.get(url).status_code == 401
        assert httpx.get(f"{url}/api/detections/5/thumbnail").status_code == 401  # media too
        assert httpx.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert httpx.get(url, headers={"Authorization": f"Bearer {token}"}).status_code == 200
        # the scheme is case-insensitive (RFC 7235)
        assert httpx.get(url, headers={"Authorization": f"bearer {token}"}).status_code == 200
        assert httpx.get(url, headers={"Authorization": f"BEARER {token}"}).status_code == 200
        assert httpx.get(f"{url}/healthz").status_code == 200  # liveness needs no token
        with httpx.Client(follow_redirects=True) as client:  # ?token= once, then the cookie
            r = client.get(f"{url}/?token={token}")
            assert r.status_code == 200 and r.history[0].status_code == 303
            assert "token" not in str(r.url)  # gone from the address bar and the history
            assert client.get(f"{url}/api/detections/5/thumbnail").status_code == 200


def test_camera_names_are_escaped(tmp_path: Path) -> None:
    from cli import main
    from cli.web import create_app
    from storage.gallery import Gallery
    from tests.conftest import write_video

    video = write_video(tmp_path / "v.avi", frames=4)
    evil = "<script>alert(1)</script>"
    data = tmp_path / "g"
    argv = ["ingest", str(video), "--camera", evil, "--reid", "hsv", "--detector", "hog"]
    assert main([*argv, "--data-dir", str(data), "-q"]) == 0
    with (
        Gallery(f"sqlite:///{data / 'gallery.db'}", data) as gallery,
        serving(create_app(gallery)) as url,
    ):
        page = httpx.get(url).text
        assert evil not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert httpx.get(f"{url}/api/videos").json()[0]["camera"] == evil  # data stays data


def test_serve_refuses_bad_settings_in_one_line(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from cli import main
    from cli.serve import is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    for argv, words in (
        (["--token", "short"], "at least 16"),
        (["--token", " " * 16], "no spaces"),
        (["--token", "x" * 15 + " "], "at least 16"),
        (["--host", "no-such-host.invalid"], "cannot resolve"),
        (["--port", "70000"], "not a TCP port"),
        (["--data-dir", str(tmp_path / "none")], "gallery"),
    ):
        assert main(["serve", *argv]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0], err
