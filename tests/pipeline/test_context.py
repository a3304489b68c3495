"""pipeline.context: the one place a run's models are built."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from pipeline.context import Models, build_models
from pipeline.core.errors import ProwlError


def test_an_int8_detector_is_rebuilt_for_each_new_video_and_fp32_is_kept(
    cfg_default: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import detectors

    calibrated: list[str] = []

    def fake_build(section: Any, footage: str) -> str:  # stands in for the slow calibration
        calibrated.append(footage)
        return f"detector for {footage}"

    monkeypatch.setattr(detectors, "build_for_footage", fake_build)
    models = Models("detector for a.avi", "embedder", "a.avi")  # type: ignore[arg-type]
    fp32 = replace(cfg_default, detector=replace(cfg_default.detector, precision="fp32"))
    int8 = replace(cfg_default, detector=replace(cfg_default.detector, precision="int8"))
    assert models.for_footage(fp32, "b.avi") is models and calibrated == []
    assert models.for_footage(int8, "a.avi") is models  # calibrated on it already
    again = models.for_footage(int8, "b.avi")
    assert calibrated == ["b.avi"] and again.detector == "detector for b.avi"
    assert again.embedder == "embedder" and again.footage == "b.avi"


def test_an_unknown_model_name_is_one_user_error(cfg_default: Any) -> None:
    bad = replace(cfg_default, reid=replace(cfg_default.reid, name="no-such-embedder"))
    with pytest.raises(ProwlError, match="no-such-embedder"):
        build_models(replace(bad, detector=replace(bad.detector, name="hog")), None)
