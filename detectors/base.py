"""What every detector is: the ``Detector`` protocol (importable without the package's
builder, so wrappers such as the tiler can name it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pipeline.types import Detections, Frame


class Detector(Protocol):
    name: str

    def detect(self, frames: Sequence[Frame]) -> list[Detections]:
        """One ``Detections`` per frame, same order; boxes in original-frame pixels."""
        ...
