"""Clips are evidence: one that did not come out whole (a full disk truncates files without
an error from the writer) is never cached, served or zipped as good."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Run in a child process: RLIMIT_FSIZE is how a full disk looks to a writer (writes past the
# limit fail with EFBIG), and it must not touch the test runner's own files.
CHILD = r"""
import json, resource, signal, sys, threading, zipfile
from pathlib import Path
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
import pipeline.clips as clips
from pipeline.evidence import write_evidence
from pipeline.query import run_query
from storage.gallery import Gallery

url, data, det = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
real_clip_path = clips.clip_path

full = threading.Lock()  # the limit is the process's: one clip at a time is cut under it


def on_a_full_disk(limit):
    def cut(*args, **kwargs):
        with full:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
            try:
                return real_clip_path(*args, **kwargs)
            finally:
                resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    return cut

out = {}
g = Gallery(url, data, must_exist=True)
for limit in (0, 60_000):  # nothing fits; part of the clip fits
    clips.clip_path = on_a_full_disk(limit)
    try:
        clips.clip_path(g, det)
        out[str(limit)] = "made"
    except clips.ClipError as exc:
        out[str(limit)] = str(exc)
out["cached_after_failures"] = sorted(p.name for p in (data / "clips").glob("*"))
result = run_query(g, [], 3, detection_id=det)
target = write_evidence(g, result, data / "case.zip")
out["zip"] = str(target)
clips.clip_path = real_clip_path  # space freed: the clip is made, whole
out["after"] = str(clips.clip_path(g, det))
print(json.dumps(out))
"""


@pytest.mark.slow
def test_a_clip_cut_on_a_full_disk_is_refused_not_cached(vtest_gallery, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from pipeline.clips import decoded_frames

    cfg, gallery, _summary, _data = vtest_gallery
    det = 50
    gallery.detection(det)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, cfg.db_url, str(tmp_path), str(det)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    for limit in ("0", "60000"):
        message = out[limit]
        assert "nothing was kept" in message or "could not be written" in message, out
    assert out["cached_after_failures"] == []  # no broken clip left to be served later
    z = zipfile.ZipFile(out["zip"])
    names = z.namelist()
    manifest = json.loads(z.read("videos.json"))
    # the evidence zip's clips were cut on the "full disk": listed as not made, never zipped
    assert not [n for n in names if n.startswith("clips/")]
    assert len(manifest["clips_not_made"]) == 3
    assert "clips/" not in z.read("SHA256SUMS").decode()
    after = Path(out["after"])
    assert after.is_file() and decoded_frames(after) > 30  # once there is room, a whole clip
