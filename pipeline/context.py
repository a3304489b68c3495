"""What a run works with, built in one place for every entry point (the CLI, the web app's
jobs, Ray workers, the benchmarks): the models (the configured detector, calibrated for the
footage it will see, and the embedder) and the ``RunContext`` that carries them with the
settings, the gallery and where progress goes into every ingest (file, Ray, live)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from detectors import Detector
from pipeline.core.config import Config, ReidConfig
from pipeline.core.errors import ProwlError
from reid import Embedder
from storage.gallery import Gallery

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


@dataclass
class RunContext:
    """Settings, gallery, models and progress sinks of one ingest, built once by the entry
    point and handed to ``ingest_video`` / ``ingest_distributed`` / ``ingest_live``.
    ``progress(frames, people)`` is told as work lands; ``planned(frames)`` once, before it
    starts; ``stop_event`` set = finish the current batch and stop (the run resumes later)."""

    cfg: Config
    gallery: Gallery
    models: Models
    progress: Callable[[int, int], None] | None = None
    stop_event: threading.Event | None = None
    planned: Callable[[int], None] | None = None

    @property
    def embedder(self) -> Embedder:
        return self.models.embedder

    def detector_for(self, footage: str | Path) -> Detector:
        """The detector for ``footage`` (an int8 one calibrated on it, kept for the next
        video of the same name)."""
        self.models = self.models.for_footage(self.cfg, footage)
        return self.models.detector


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
