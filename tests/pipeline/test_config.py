from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.errors import ConfigError


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
