"""The models a run uses, built in one place for every entry point (the CLI, the web app's
jobs, Ray workers, the benchmarks): the configured detector, sized and calibrated for the
footage it will see, and the embedder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from detectors import Detector
from pipeline.core.config import Config, ReidConfig
from pipeline.core.errors import ProwlError
from reid import Embedder

T = TypeVar("T")


@dataclass(frozen=True)
class Models:
    """A detector and an embedder, built once per process. ``footage``: the video an int8
    detector was calibrated on (its run key records it; another video needs its own)."""

    detector: Detector
    embedder: Embedder
    footage: str | None = None

    def for_footage(self, cfg: Config, footage: str | Path) -> Models:
        """These models for ``footage``: the same ones, except that an int8 detector is
        rebuilt, calibrated on that video's frames."""
        if cfg.detector.precision != "int8" or str(footage) == self.footage:
            return self
        from detectors import build_for_footage

        detector = _named(build_for_footage, cfg.detector, str(footage))
        return replace(self, detector=detector, footage=str(footage))


def build_models(cfg: Config, footage: str | Path | None, reid: ReidConfig | None = None) -> Models:
    """The detector of ``cfg`` (int8: calibrated on ``footage``; without footage, built for
    any) and the embedder of ``reid`` (default: ``cfg.reid``). An unknown name is a one-line
    ProwlError, raised before anything is stored."""
    from detectors import build_detector, build_for_footage
    from reid import build_embedder

    if footage is None:
        detector = _named(build_detector, cfg.detector)
    else:
        detector = _named(build_for_footage, cfg.detector, str(footage))
    embedder = _named(build_embedder, reid or cfg.reid)
    return Models(detector, embedder, None if footage is None else str(footage))


def _named(factory: Callable[..., T], *args: Any) -> T:
    try:
        return factory(*args)
    except ValueError as exc:  # an unknown detector or embedder name
        raise ProwlError(str(exc)) from None
