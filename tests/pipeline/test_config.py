from pathlib import Path

import pytest

from pipeline.core.config import load_config
from pipeline.core.errors import ConfigError


def test_defaults_file_then_overrides(tmp_path: Path) -> None:
    user = tmp_path / "c.yaml"
    user.write_text("detector:\n  conf: 0.4\nvideo:\n  stride: 3\n")
    cfg = load_config(user, {"video": {"stride": 5, "start_s": None}})
    assert cfg.detector.conf == 0.4  # from the user's file
    assert cfg.video.stride == 5  # the flag beats the file
    assert cfg.video.start_s is None
    assert cfg.detector.name == "yolov8n"  # untouched default
    assert cfg.db_url.endswith("prowl-data/gallery.db")


@pytest.mark.parametrize(
    "text,match",
    [
        ("detector:\n  confidence: 0.4\n", "detector.confidence"),
        ("colour: red\n", "colour"),
        ("video: 3\n", "must be a mapping"),
        ("[1, 2\n", "not valid YAML"),
    ],
)
def test_bad_files_name_the_problem(tmp_path: Path, text: str, match: str) -> None:
    user = tmp_path / "c.yaml"
    user.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_config(user)


def test_invalid_values_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="stride"):
        load_config(None, {"video": {"stride": 0}})
    with pytest.raises(ConfigError, match="after --start"):
        load_config(None, {"video": {"start_s": 5, "end_s": 2}})
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    "text,key,accepts",
    [
        ("video:\n  stride: abc\n", "video.stride", "whole number"),
        ("video:\n  stride: 2.5\n", "video.stride", "whole number"),
        ("video:\n  stride: true\n", "video.stride", "whole number"),
        ("detector:\n  conf: high\n", "detector.conf", "within 0..1"),
        ("detector:\n  conf: 1.5\n", "detector.conf", "within 0..1"),
        ("detector:\n  conf: .nan\n", "detector.conf", "within 0..1"),
        ("video:\n  queue_frames: null\n", "video.queue_frames", "whole number"),
        ("query:\n  k: ten\n", "query.k", "whole number"),
        ("detector:\n  name: 5\n", "detector.name", "model name"),
        ('tracking:\n  enabled: "no"\n', "tracking.enabled", "true or false"),
        ("detector:\n  imgsz_px: 641\n", "detector.imgsz_px", "multiple of 32"),
        ("reid:\n  device: gpu\n", "reid.device", "cuda"),
        ("storage:\n  thumbnail_px: 0\n", "storage.thumbnail_px", "16..2048"),
        ("db: 5\n", "db", "or null"),
    ],
)
def test_every_value_is_typed_and_range_checked(
    tmp_path: Path, text: str, key: str, accepts: str
) -> None:
    """The hostile cases: before, these gave tracebacks, or were taken (stride 2.5 kept every
    5th frame; enabled "no" left tracking on)."""
    user = tmp_path / "c.yaml"
    user.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(user)
    msg = str(err.value)
    assert f"'{key}'" in msg and accepts in msg and "\n" not in msg


def test_yaml_numbers_and_booleans_are_taken(tmp_path: Path) -> None:
    user = tmp_path / "c.yaml"
    user.write_text("tracking:\n  enabled: false\n  buffer_s: 2\nvideo:\n  start_s: 1\n")
    cfg = load_config(user)
    assert cfg.tracking.enabled is False and cfg.tracking.buffer_s == 2.0
    assert isinstance(cfg.video.start_s, float)
