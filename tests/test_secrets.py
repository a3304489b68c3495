"""Secrets in addresses never leave the process: a database password and a camera's password
or token (in its user information, with a raw '@', with no user, or in the query string) are
planted, then every output is searched for them: stdout, stderr, the progress bar, the
database's own bytes, the web API, `prowl stats`, the evidence zip, model cards and weights."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from pipeline.core.redact import redact_url
from tests.pipeline.test_live import _port, sender

ROOT = Path(__file__).resolve().parent.parent


def _prowl(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "run_pipeline.py", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("rtsp://admin:p@ss:w0rd@cam.example:554/stream", "p@ss:w0rd"),
        ("rtsp://:pw-only-9@cam.example/stream", "pw-only-9"),
        ("http://cam.example/feed.mjpg?user=admin&password=S3cretQ&fps=5", "S3cretQ"),
        ("http://cam.example/feed?token=T0kenZ#x", "T0kenZ"),
        ("postgresql+psycopg://u:DbPw@db.example:5432/g?sslpassword=KeyPw", "DbPw"),
    ],
)
def test_redaction_of_every_form(url: str, secret: str) -> None:
    shown = redact_url(url)
    assert secret not in shown and "***" in shown
    assert shown.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1] in url  # host kept


def test_unreachable_camera_secrets_stay_out_of_the_error(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("live:\n  connect_tries: 1\n  read_timeout_s: 1\n")
    port = _port()  # nothing listens
    for url, secret in (
        (f"rtsp://admin:p@ss:w0rd@127.0.0.1:{port}/s", "w0rd"),
        (f"rtsp://:pw-only-9@127.0.0.1:{port}/s", "pw-only-9"),
        (f"http://127.0.0.1:{port}/f.mjpg?user=admin&password=S3cretQ", "S3cretQ"),
    ):
        done = _prowl("ingest", url, "--data-dir", str(tmp_path / "g"), "--config", str(config))
        assert done.returncode == 2
        assert secret not in done.stdout + done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="no ffmpeg (`make ffmpeg`)")
def test_a_camera_token_is_stored_and_shown_nowhere(vtest_path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import httpx
    from sqlalchemy import select

    from cli.web import create_app
    from storage.gallery import Gallery
    from storage.models import DetectionRow
    from tests.test_serve import serving

    secret = "S3cretQ9"
    port = _port()
    url = f"http://127.0.0.1:{port}/live.ts?user=admin&password={secret}"
    data = tmp_path / "g"
    with sender(vtest_path, port, seconds=30):  # outlasts --end 3 however slow the start
        done = _prowl("ingest", url, "--end", "3", "--data-dir", str(data))
    assert done.returncode == 0, done.stderr[-2000:]
    assert secret not in done.stdout + done.stderr  # summary lines and the progress bar
    stats = _prowl("stats", "--data-dir", str(data))
    assert stats.returncode == 0 and secret not in stats.stdout + stats.stderr
    for file in data.rglob("*"):  # the database and its WAL, index files
        if file.is_file():
            assert secret.encode() not in file.read_bytes(), file
    with Gallery(f"sqlite:///{data / 'gallery.db'}", data, must_exist=True) as g:
        (video,) = g.videos()
        assert "password=***" in video.path
        with g.session() as sess:
            det = sess.scalar(select(DetectionRow.id).order_by(DetectionRow.id).limit(1))
        assert det is not None
        with serving(create_app(g)) as served:
            for path in ("/api/videos", "/api/runs", f"/api/videos/{video.id}/tracks"):
                assert secret not in httpx.get(f"{served}{path}").text
            hits = httpx.post(f"{served}/api/search", data={"detection_id": str(det)})
            assert hits.status_code == 200 and secret not in hits.text
    case = tmp_path / "case.zip"
    q = _prowl("query", "--detection", str(det), "--data-dir", str(data), "--evidence", str(case))
    assert q.returncode == 0, q.stderr
    with zipfile.ZipFile(case) as z:
        for name in z.namelist():
            assert secret.encode() not in z.read(name), name


@pytest.mark.slow
@pytest.mark.postgres
def test_a_database_password_is_printed_and_written_nowhere(vtest_path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import fresh_pg_database

    secret = "DbS3cret7"
    with fresh_pg_database() as db:
        # trust authentication: the password is accepted and ignored, as a real one would be
        with_pw = db.replace("postgres@", f"postgres:{secret}@")
        data = tmp_path / "data"
        ingest = _prowl(
            "ingest", str(vtest_path), "--end", "6", "--db", with_pw, "--data-dir", str(data)
        )
        assert ingest.returncode == 0, ingest.stderr[-2000:]
        assert secret not in ingest.stdout + ingest.stderr
        out = tmp_path / "model"
        train = _prowl(
            "train",
            "--from-gallery",
            "--db",
            with_pw,
            "--data-dir",
            str(data),
            "--min-sightings",
            "5",
            "--epochs",
            "1",
            "--iters-per-epoch",
            "1",
            "--init",
            "none",
            "--out",
            str(out),
        )
        assert train.returncode == 0, train.stderr[-2000:]
        assert secret not in train.stdout + train.stderr
        written = [f for f in out.rglob("*") if f.is_file()]
        assert any(f.name == "model.pt" for f in written)
        for file in written:
            assert secret.encode() not in file.read_bytes(), file
