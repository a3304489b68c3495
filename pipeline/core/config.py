"""Configuration: ``configs/default.yaml`` holds every default; a user file and CLI flags
override it key by key. Unknown keys are an error (a typo must never silently do nothing).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipeline.core.errors import ConfigError

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parents[2] / "configs" / "default.yaml"


@dataclass(frozen=True)
class VideoConfig:
    stride: int
    start_s: float | None
    end_s: float | None
    queue_frames: int
    fps: float | None = None  # image folders: frames per second (None: from names/EXIF, or 25)
    start_time: str | None = None  # ISO 8601 wall-clock time of the first frame (overrides)


@dataclass(frozen=True)
class DetectorConfig:
    name: str
    imgsz_px: int
    conf: float
    iou: float
    batch_frames: int
    device: str
    backend: str = "auto"  # auto | openvino | onnxruntime | torch
    precision: str = "fp32"  # fp32 | int8 (OpenVINO, NNCF calibrated on the user's frames)
    calibration_frames: int = 32  # int8: frames of the footage used to calibrate
    min_person_px: int = 48  # probe each video for the input size (0 = off; see adapt_recall)
    max_imgsz_px: int = 1280  # the largest input that adaptation may choose
    tile_px: int | None = None  # tiled inference: tile size at native resolution (None = off)
    tile_overlap: float = 0.2  # fraction of a tile shared with its neighbour
    adapt_recall: float = 0.9  # the chosen input finds this share of what the largest finds
    motion: str = "auto"  # auto: detect only where something moved or somebody is; off
    motion_refresh_s: float = 2.0  # motion gating: look at least this often anyway
    every_frames: int = 1  # detect every Nth kept frame; the tracker predicts those between


@dataclass(frozen=True)
class ReidConfig:
    name: str
    batch_crops: int
    device: str
    weights: str | None = None
    backend: str = "auto"  # auto | openvino | onnxruntime | torch


@dataclass(frozen=True)
class TrackingConfig:
    enabled: bool
    embed_every_frames: int
    embed_on_resize: float
    high_thresh: float
    low_thresh: float
    new_track_thresh: float
    match_thresh: float
    buffer_s: float
    appearance_weight: float = 0.0  # 0: position only (then the embedding cadence applies)
    appearance_every_frames: int = 1  # with appearance: the crops of every Nth frame embedded


@dataclass(frozen=True)
class StorageConfig:
    commit_frames: int
    thumbnail_px: int
    ann_min_vectors: int | None = 200_000  # approximate search from this size (None = never)


@dataclass(frozen=True)
class QueryConfig:
    k: int
    rerank: bool
    expand: int = 0  # α-query expansion with this many best hits (0: off)


@dataclass(frozen=True)
class ExecutorConfig:
    name: str  # inprocess | ray
    address: str | None  # a Ray cluster (host:port); None = Ray started on this machine
    segment_s: float  # a video is cut into segments of this many seconds ...
    overlap_s: float  # ... each decoded from this much earlier, to join tracks across cuts
    workers: int | None  # Ray actors (None = the cluster's CPUs / cpus_per_worker)
    cpus_per_worker: float


@dataclass(frozen=True)
class LiveConfig:
    connect_tries: int  # a live source that does not open after this many tries is an error
    backoff_max_s: float  # reconnect delays double from 1 s up to this
    read_timeout_s: float  # no frame for this long = the stream broke
    idle_s: float  # a followed file that has not grown for this long has ended
    drop_when_behind: bool = True  # a camera (never a followed file): drop the oldest frame


@dataclass(frozen=True)
class ServeConfig:
    max_image_mb: float = 10.0  # a query image upload
    max_image_megapixels: float = 40.0  # decoded size of a query image (header read first)
    max_video_upload_mb: float = 4096.0  # a video uploaded for ingest
    workers: int = 4  # searches, frames, exports at once (threads); the rest wait
    clip_jobs: int = 2  # clips cut at once
    clips_cache_mb: float = 2048.0  # cached clips; least recently used go first


@dataclass(frozen=True)
class Config:
    data_dir: Path
    db: str | None
    video: VideoConfig
    detector: DetectorConfig
    reid: ReidConfig
    tracking: TrackingConfig
    storage: StorageConfig
    query: QueryConfig
    executor: ExecutorConfig
    live: LiveConfig
    serve: ServeConfig = ServeConfig()

    @property
    def db_url(self) -> str:
        return self.db or f"sqlite:///{self.data_dir / 'gallery.db'}"


_SECTIONS: dict[str, type[Any]] = {
    "video": VideoConfig,
    "detector": DetectorConfig,
    "reid": ReidConfig,
    "tracking": TrackingConfig,
    "storage": StorageConfig,
    "query": QueryConfig,
    "executor": ExecutorConfig,
    "live": LiveConfig,
    "serve": ServeConfig,
}


def _merge(base: dict[str, Any], override: dict[str, Any], where: str) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if key not in out:
            valid = ", ".join(sorted(out))
            raise ConfigError(f"unknown config key '{where}{key}'; valid keys: {valid}")
        if isinstance(out[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(f"config key '{where}{key}' must be a mapping")
            out[key] = _merge(out[key], value, f"{where}{key}.")
        else:
            out[key] = value
    return out


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} does not exist; pass an existing YAML file"
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text; save it as UTF-8 YAML") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}".splitlines()[0]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return data


def _is_iso(text: str) -> bool:
    from datetime import datetime

    try:
        datetime.fromisoformat(text.strip())
        return True
    except ValueError:
        return False


_WHOLE = "a whole number"
_NUMBER = "a number"
_BACKENDS = ("auto", "openvino", "onnxruntime", "torch")
DEVICE = re.compile(r"^(cpu|mps|cuda(:\d+)?)$")

# key -> (check of the typed value, what the key accepts); types come from the dataclasses
_RANGES: dict[str, tuple[Any, str]] = {
    "video.stride": (lambda v: v >= 1, ">= 1"),
    "video.start_s": (lambda v: v >= 0, ">= 0 (seconds)"),
    "video.end_s": (lambda v: v > 0, "> 0 (seconds)"),
    "video.queue_frames": (lambda v: 1 <= v <= 4096, "within 1..4096"),
    "video.fps": (lambda v: 0 < v <= 1000, "within (0, 1000] (frames per second)"),
    "video.start_time": (_is_iso, "an ISO 8601 time such as 2026-11-25T15:44:33"),
    "detector.name": (lambda v: v.strip() != "", "a model name (see `prowl models`)"),
    "detector.imgsz_px": (
        lambda v: 32 <= v <= 8192 and v % 32 == 0,
        "that is a multiple of 32 within 32..8192",
    ),
    "detector.conf": (lambda v: 0 <= v <= 1, "within 0..1"),
    "detector.iou": (lambda v: 0 < v <= 1, "within (0, 1]"),
    "detector.batch_frames": (lambda v: 1 <= v <= 1024, "within 1..1024"),
    "detector.device": (lambda v: bool(DEVICE.match(v)), "cpu, cuda, cuda:N or mps"),
    "detector.backend": (lambda v: v in _BACKENDS, "one of auto, openvino, onnxruntime, torch"),
    "detector.precision": (lambda v: v in ("fp32", "int8"), "fp32 or int8"),
    "detector.min_person_px": (lambda v: 0 <= v <= 1024, "within 0..1024 (0 = off)"),
    "detector.max_imgsz_px": (
        lambda v: 32 <= v <= 8192 and v % 32 == 0,
        "that is a multiple of 32 within 32..8192",
    ),
    "detector.tile_px": (
        lambda v: 64 <= v <= 8192 and v % 32 == 0,
        "that is a multiple of 32 within 64..8192",
    ),
    "detector.tile_overlap": (lambda v: 0 <= v < 0.9, "within [0, 0.9)"),
    "detector.adapt_recall": (lambda v: 0 < v <= 1, "within (0, 1]"),
    "detector.every_frames": (lambda v: 1 <= v <= 100, "within 1..100 (frames)"),
    "detector.motion": (lambda v: v in ("auto", "off"), "auto or off"),
    "detector.motion_refresh_s": (lambda v: 0 < v <= 3600, "within (0, 3600] (seconds)"),
    "detector.calibration_frames": (lambda v: 1 <= v <= 1000, "within 1..1000"),
    "reid.backend": (lambda v: v in _BACKENDS, "one of auto, openvino, onnxruntime, torch"),
    "reid.name": (lambda v: v.strip() != "", "a model name (see `prowl models`)"),
    "reid.batch_crops": (lambda v: 1 <= v <= 4096, "within 1..4096"),
    "reid.device": (lambda v: bool(DEVICE.match(v)), "cpu, cuda, cuda:N or mps"),
    "tracking.embed_every_frames": (lambda v: v >= 1, ">= 1"),
    "tracking.embed_on_resize": (lambda v: v > 0, "> 0 (a fraction of the box height)"),
    "tracking.high_thresh": (lambda v: 0 <= v <= 1, "within 0..1"),
    "tracking.low_thresh": (lambda v: 0 <= v <= 1, "within 0..1"),
    "tracking.new_track_thresh": (lambda v: 0 <= v <= 1, "within 0..1"),
    "tracking.match_thresh": (lambda v: 0 < v <= 1, "within (0, 1]"),
    "tracking.buffer_s": (lambda v: v >= 0, ">= 0 (seconds)"),
    "tracking.appearance_weight": (lambda v: 0 <= v <= 1, "within 0..1"),
    "tracking.appearance_every_frames": (lambda v: v >= 1, ">= 1 (frames)"),
    "query.expand": (lambda v: 0 <= v <= 50, "within 0..50 (hits; 0 = off)"),
    "storage.commit_frames": (lambda v: v >= 1, ">= 1"),
    "storage.thumbnail_px": (lambda v: 16 <= v <= 2048, "within 16..2048"),
    "storage.ann_min_vectors": (lambda v: v >= 1000, ">= 1000 (vectors)"),
    "query.k": (lambda v: 1 <= v <= 100_000, "within 1..100000"),
    "executor.name": (lambda v: v in ("inprocess", "ray"), "inprocess or ray"),
    "executor.address": (lambda v: ":" in v or v == "auto", "host:port of a Ray cluster, or auto"),
    "executor.segment_s": (lambda v: 1 <= v <= 86400, "within 1..86400 (seconds)"),
    "executor.overlap_s": (lambda v: 0 <= v <= 60, "within 0..60 (seconds)"),
    "executor.workers": (lambda v: 1 <= v <= 10_000, "within 1..10000"),
    "executor.cpus_per_worker": (lambda v: 0 < v <= 256, "within (0, 256]"),
    "live.connect_tries": (lambda v: 1 <= v <= 1000, "within 1..1000"),
    "live.backoff_max_s": (lambda v: 1 <= v <= 3600, "within 1..3600 (seconds)"),
    "live.read_timeout_s": (lambda v: 0.5 <= v <= 600, "within 0.5..600 (seconds)"),
    "live.idle_s": (lambda v: 1 <= v <= 86400, "within 1..86400 (seconds)"),
    "serve.max_image_mb": (lambda v: 0.01 <= v <= 1024, "within 0.01..1024 (MB)"),
    "serve.max_image_megapixels": (lambda v: 0.01 <= v <= 1000, "within 0.01..1000"),
    "serve.max_video_upload_mb": (lambda v: 1 <= v <= 1 << 20, "within 1..1048576 (MB)"),
    "serve.workers": (lambda v: 1 <= v <= 256, "within 1..256"),
    "serve.clip_jobs": (lambda v: 1 <= v <= 64, "within 1..64"),
    "serve.clips_cache_mb": (lambda v: 1 <= v <= 1 << 24, "within 1..16777216 (MB)"),
}


def _kind(hint: str) -> tuple[str, bool]:
    """('int' | 'float' | 'bool' | 'str', whether None is allowed) of a field annotation."""
    parts = [p.strip() for p in str(hint).split("|")]
    return next(p for p in parts if p != "None"), "None" in parts


def _typed(key: str, value: Any, hint: str) -> Any:
    """``value`` as the field's type, or a ConfigError naming the key, the value and what the
    key accepts. No coercion from text: "2" is not 2, and "no" is not False."""
    kind, optional = _kind(hint)
    _check, accepts = _RANGES.get(key, (None, ""))
    what = {"int": _WHOLE, "float": _NUMBER, "bool": "true or false", "str": "text"}[kind]
    wanted = (accepts if kind == "str" and accepts else f"{what} {accepts}".strip()) + (
        ", or null" if optional else ""
    )
    if value is None:
        if optional:
            return None
        raise ConfigError(f"config key '{key}' is empty; it takes {wanted}")
    ok = {
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, int | float) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
        "str": isinstance(value, str),
    }[kind]
    if kind == "float" and ok:
        value = float(value)
        ok = math.isfinite(value)
    if not ok or (_check is not None and not _check(value)):
        raise ConfigError(f"config key '{key}' is {value!r}; it takes {wanted}")
    return value


def _section(cls: type[Any], values: dict[str, Any], name: str) -> Any:
    hints = {f.name: f.type for f in dataclasses.fields(cls)}
    kwargs = {
        fname: _typed(f"{name}.{fname}", values[fname], str(hint)) for fname, hint in hints.items()
    }
    return cls(**kwargs)


def load_config(path: Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Defaults, then the user's file, then ``overrides`` (nested dict; None values ignored)."""
    data = _read_yaml(DEFAULT_CONFIG_PATH)
    if path is not None:
        data = _merge(data, _read_yaml(Path(path)), "")
    if overrides:
        data = _merge(data, _drop_none(overrides), "")
    sections = {name: _section(cls, data[name], name) for name, cls in _SECTIONS.items()}
    data_dir = _typed("data_dir", data["data_dir"], "str")
    db = _typed("db", data["db"], "str | None")
    cfg = Config(data_dir=Path(data_dir), db=db, **sections)
    _validate(cfg)
    return cfg


def check_detector(d: DetectorConfig) -> None:
    """The range checks of the config file, for detector settings made in code (bench axes)."""
    for f in dataclasses.fields(d):
        _typed(f"detector.{f.name}", getattr(d, f.name), str(f.type))


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in d.items():
        if isinstance(value, dict):
            inner = _drop_none(value)
            if inner:
                out[key] = inner
        elif value is not None:
            out[key] = value
    return out


def _validate(cfg: Config) -> None:
    checks = [
        (cfg.video.stride >= 1, "video.stride must be >= 1"),
        (cfg.video.queue_frames >= 1, "video.queue_frames must be >= 1"),
        (cfg.detector.batch_frames >= 1, "detector.batch_frames must be >= 1"),
        (0.0 <= cfg.detector.conf <= 1.0, "detector.conf must be within 0..1"),
        (cfg.reid.batch_crops >= 1, "reid.batch_crops must be >= 1"),
        (cfg.storage.commit_frames >= 1, "storage.commit_frames must be >= 1"),
        (cfg.query.k >= 1, "query.k must be >= 1"),
        (cfg.tracking.embed_every_frames >= 1, "tracking.embed_every_frames must be >= 1"),
        (
            cfg.detector.every_frames == 1 or cfg.tracking.enabled,
            "detector.every_frames above 1 needs tracking.enabled (the tracker fills the "
            "frames between)",
        ),
    ]
    if cfg.video.start_s is not None and cfg.video.end_s is not None:
        checks.append((cfg.video.end_s > cfg.video.start_s, "--end must be after --start"))
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
