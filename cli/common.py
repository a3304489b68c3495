"""What every command shares: storage flags, loading the configuration, opening the gallery,
time parsing, and turning a model factory's ValueError into a user error."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from pipeline.core.config import Config, load_config
from pipeline.core.errors import ProwlError
from storage.gallery import Gallery

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def storage_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db", help="SQLAlchemy URL of the gallery (default sqlite:///DATA_DIR/gallery.db)"
    )
    p.add_argument("--data-dir", type=Path, help="folder of the embedded gallery and index files")
    p.add_argument("--config", type=Path, help="YAML file overriding configs/default.yaml")


def load_cfg(args: argparse.Namespace, **sections: dict[str, Any]) -> Config:
    """configs/default.yaml, then --config, then the flags given in ``sections``."""
    data_dir = getattr(args, "data_dir", None)
    overrides: dict[str, Any] = {
        "db": getattr(args, "db", None),
        "data_dir": str(data_dir) if data_dir else None,
    }
    overrides.update(sections)
    return load_config(getattr(args, "config", None), overrides)


def open_gallery(cfg: Config, must_exist: bool) -> Gallery:
    return Gallery(
        cfg.db_url,
        cfg.data_dir,
        must_exist=must_exist,
        ann_min_vectors=cfg.storage.ann_min_vectors,
    )


def parse_time(text: str) -> float:
    """Seconds ('12.5') or clock time ('1:02:03.5', '02:03')."""
    try:
        parts = [float(p) for p in text.split(":")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a time; use seconds or hh:mm:ss"
        ) from None
    if len(parts) > 3 or any(p < 0 for p in parts):
        raise argparse.ArgumentTypeError(f"'{text}' is not a time; use seconds or hh:mm:ss")
    seconds = 0.0
    for part in parts:
        seconds = seconds * 60 + part
    return seconds


def build(factory: Callable[[Any], Any], section: Any) -> Any:
    """``build_detector``/``build_embedder`` with an unknown name as a one-line user error."""
    try:
        return factory(section)
    except ValueError as exc:
        raise ProwlError(str(exc)) from None


class StopOnSignal:
    """First SIGINT/SIGTERM asks the work to stop after committing; a second one aborts."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._old: dict[int, Any] = {}

    def __enter__(self) -> threading.Event:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handle)
        return self.event

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.event.is_set():
            raise KeyboardInterrupt
        self.event.set()
        print(
            f"\nprowl: {signal.Signals(signum).name} received; committing what is processed "
            "(again to abort)",
            file=sys.stderr,
        )

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
