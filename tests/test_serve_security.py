"""`prowl serve` attacked as a hostile page, a careless user and a flood would: Host names
(DNS rebinding), other sites, huge and bomb-like bodies, ids past their columns, security
headers, a port in use. Each case here was a hole in an earlier version."""

from __future__ import annotations

import os
import select
import socket
import struct
import time
import zlib
from pathlib import Path

import pytest

from tests.test_serve import serving

httpx = pytest.importorskip("httpx")


def _png_declaring(width: int, height: int) -> bytes:
    """A small PNG file whose header declares ``width`` x ``height`` pixels (its data is a
    few bytes: decoding it would allocate the declared size first)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def test_unknown_host_names_are_refused_before_routing(served) -> None:  # type: ignore[no-untyped-def]
    from storage.subjects import subjects

    url, gallery = served
    port = url.rsplit(":", 1)[1]
    evil = {"Host": f"evil.example:{port}"}
    r = httpx.get(f"{url}/api/videos", headers=evil)
    assert r.status_code == 421 and "--allowed-host" in r.json()["error"]
    before = subjects(gallery)
    r = httpx.post(
        f"{url}/api/subjects", headers=evil, data={"name": "rebound", "detection_ids": "1"}
    )
    assert r.status_code == 421 and subjects(gallery) == before  # nothing was created
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}"):
        assert httpx.get(f"{url}/api/videos", headers={"Host": host}).status_code == 200


def test_allowed_host_serves_a_reverse_proxys_name(vtest_gallery) -> None:  # type: ignore[no-untyped-def]
    from cli.web import create_app
    from cli.web_guard import allowed_hosts_for

    _cfg, gallery, _summary, _data = vtest_gallery
    hosts = allowed_hosts_for("127.0.0.1", ["prowl.example.org"])
    with serving(create_app(gallery, allowed_hosts=hosts)) as url:
        proxied = {"Host": "prowl.example.org"}
        assert httpx.get(f"{url}/api/videos", headers=proxied).status_code == 200
        assert httpx.get(f"{url}/api/videos", headers={"Host": "other.example"}).status_code == 421
    assert allowed_hosts_for("0.0.0.0") is None  # a wildcard bind: its token is the guard


def test_other_sites_cannot_read_or_make_work(served) -> None:  # type: ignore[no-untyped-def]
    """A hostile page cannot cut clips, read frames or search through a tokenless server
    (cross-site GETs included); a link to the search page still opens it."""
    url, _gallery = served
    clip = f"{url}/api/detections/5/clip"
    for headers in (
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "http://evil.example"},
        {"Origin": url.replace("http://", "https://")},  # another scheme is another origin
        {"Referer": "http://evil.example/page.html"},
    ):
        for method, target in (
            ("GET", clip),
            ("GET", f"{url}/api/detections/5/frame"),
            ("GET", f"{url}/api/videos"),
            ("POST", f"{url}/api/search"),
        ):
            r = httpx.request(method, target, headers=headers, data={"detection_id": "5"})
            assert r.status_code == 403, (method, target, headers, r.status_code)
    assert not any((Path(_gallery.data_dir) / "clips").glob("*-5-*"))  # no clip was cut
    same = httpx.get(f"{url}/api/detections/5/thumbnail", headers={"Sec-Fetch-Site": "same-origin"})
    assert same.status_code == 200
    link = httpx.get(url, headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"})
    assert link.status_code == 200


def test_every_response_carries_the_security_headers(served) -> None:  # type: ignore[no-untyped-def]
    url, _gallery = served
    for path in ("/", "/api/videos", "/api/detections/5/thumbnail", "/nope", "/static/prowl.css"):
        r = httpx.get(f"{url}{path}")
        csp = r.headers.get("content-security-policy", "")
        assert "default-src 'self'" in csp and "script-src 'self'" in csp, path
        assert "frame-ancestors 'none'" in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
    page = httpx.get(url).text
    assert "<script>" not in page and " style=" not in page  # nothing the CSP would block
    assert httpx.get(f"{url}/favicon.ico").status_code in (200, 204)


def test_decompression_bombs_are_refused_by_their_header(served) -> None:  # type: ignore[no-untyped-def]
    """A 1 kB PNG declaring 32768 x 32768 pixels took 7 GB and 15 s to decode, on the event
    loop; now it is refused from its header, and the server stays responsive meanwhile."""
    url, _gallery = served
    for side in (32768, 40000):
        bomb = _png_declaring(side, side)
        assert len(bomb) < 2000
        r = httpx.post(
            f"{url}/api/search", files={"image": ("b.png", bomb, "image/png")}, timeout=60
        )
        assert r.status_code == 413, r.text
        assert "at most 40 megapixels" in r.json()["error"]
    small_but_broken = _png_declaring(100, 100)[:40]
    r = httpx.post(f"{url}/api/search", files={"image": ("b.png", small_but_broken, "image/png")})
    assert r.status_code == 400


def test_bodies_over_the_limit_are_refused_while_streaming(served, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url, _gallery = served
    host, port = url.removeprefix("http://").rsplit(":", 1)
    # a declared 3 GB body: refused from its Content-Length, before a byte of it is read
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(
            f"POST /api/search HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Content-Type: multipart/form-data; boundary=x\r\n"
            "Content-Length: 3000000000\r\n\r\n".encode()
        )
        answer = sock.recv(4096).decode("latin-1")
    assert answer.startswith("HTTP/1.1 413"), answer[:200]

    # a chunked body (no length announced): counted as it streams, answered 413 past the
    # limit while the client is still sending
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(
            f"POST /api/search HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Content-Type: multipart/form-data; boundary=x\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
        )
        head = b'--x\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n'
        head += b"Content-Type: image/jpeg\r\n\r\n"
        sock.sendall(b"%x\r\n%s\r\n" % (len(head), head))
        sent, answer = 0, b""
        block = b"\0" * (1 << 20)
        while sent < 200 << 20 and not answer:  # up to 200 MB if nobody stops it
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(block), block))
            except OSError:  # the server closed the connection after answering
                break
            sent += len(block)
            ready, _, _ = select.select([sock], [], [], 0)
            if ready:
                answer = sock.recv(4096)
        if not answer:
            sock.settimeout(30)
            answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 100 << 20  # answered long before the end


def test_ids_past_their_columns_are_422_not_500(served) -> None:  # type: ignore[no-untyped-def]
    """PostgreSQL's INTEGER columns end at 2^31-1: such ids used to reach it and come back
    as 500 'integer out of range'."""
    url, _gallery = served
    big = 3_000_000_000
    for path in (
        f"/api/videos/{big}/tracks",
        f"/api/videos/1/frames/{big}",
        f"/api/videos/{big}/frames/1/detections",
        f"/api/subjects/{big}",
        f"/api/jobs/{big}",
        f"/api/exports/{big}",
        f"/api/detections/{2**63}/thumbnail",
    ):
        assert httpx.get(f"{url}{path}").status_code == 422, path
    for form in ({"video_id": str(big), "detection_id": "5"}, {"subject_id": str(big)}):
        r = httpx.post(f"{url}/api/search", data=form)
        assert r.status_code == 422, (form, r.text)
    r = httpx.post(f"{url}/api/search", data={"confirmed": str(2**63 + 5)})
    assert r.status_code == 422


def test_a_port_in_use_is_one_line(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from cli import main

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--port", str(port), "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"cannot listen on 127.0.0.1:{port}" in err[0], err


def test_clips_cache_keeps_the_recently_used(tmp_path: Path) -> None:
    from pipeline.clips import trim_cache

    now = time.time()
    for i in range(5):  # clip i last used i minutes ago ... oldest is 4
        p = tmp_path / f"c{i}.webm"
        p.write_bytes(b"x" * 1000)
        os.utime(p, (now - 60 * i, now - 60 * i))
    assert trim_cache(tmp_path, 2500) == 3
    assert sorted(p.name for p in tmp_path.glob("*.webm")) == ["c0.webm", "c1.webm"]
