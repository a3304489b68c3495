"""A synthetic person-search dataset written in the real PRW and MOT layouts, so tests (and a
user without the real data) exercise the real readers. People are drawn figures (head, shirt,
trousers) whose clothing colours are their identity; they walk across each camera's view."""

from __future__ import annotations

import configparser
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from pipeline.core.errors import DatasetError


@dataclass(frozen=True)
class Person:
    pid: int  # >= 1; -2 for unlabeled passers-by
    shirt: tuple[int, int, int]
    trousers: tuple[int, int, int]
    scale: float


@dataclass(frozen=True)
class SyntheticTruth:
    frames: int
    labeled_boxes: int
    unlabeled_boxes: int
    identities: int
    queries: int


def palette(rng: np.random.Generator, n: int) -> list[tuple[int, int, int]]:
    hues = (np.arange(n) * 180 / n + rng.uniform(0, 180 / n)) % 180
    out = []
    for h in hues:
        hsv = np.array(
            [[[int(h), int(rng.integers(150, 255)), int(rng.integers(120, 255))]]], np.uint8
        )
        b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
        out.append((int(b), int(g), int(r)))
    return out


def draw_person(
    img: NDArray[np.uint8], p: Person, x: float, y: float
) -> tuple[float, float, float, float]:
    """Draw person ``p`` with its feet centred at (x, y); returns its box xyxy."""
    h = 110 * p.scale
    w = 40 * p.scale
    x1, y1 = x - w / 2, y - h
    head_r = h * 0.09
    cx = int(x)
    cv2.ellipse(
        img,
        (cx, int(y1 + head_r)),
        (int(head_r * 0.8), int(head_r)),
        0,
        0,
        360,
        (140, 170, 215),
        -1,
    )
    torso = (int(x1 + w * 0.15), int(y1 + 2 * head_r), int(x1 + w * 0.85), int(y1 + h * 0.55))
    cv2.rectangle(img, torso[:2], torso[2:], p.shirt, -1)
    cv2.rectangle(img, (int(x1), torso[1]), (int(x1 + w * 0.15), int(y1 + h * 0.5)), p.shirt, -1)
    cv2.rectangle(
        img, (int(x1 + w * 0.85), torso[1]), (int(x1 + w), int(y1 + h * 0.5)), p.shirt, -1
    )
    cv2.rectangle(img, (int(x1 + w * 0.18), torso[3]), (cx - 1, int(y)), p.trousers, -1)
    cv2.rectangle(img, (cx + 1, torso[3]), (int(x1 + w * 0.82), int(y)), p.trousers, -1)
    return (float(x1), float(y1), float(x1 + w), float(y))


def write_synthetic(
    root: Path,
    fmt: str,
    identities: int = 10,
    cameras: int = 3,
    frames_per_camera: int = 16,
    size_wh: tuple[int, int] = (480, 320),
    unlabeled_per_frame: int = 1,
    seed: int = 0,
) -> SyntheticTruth:
    """Write a dataset under ``root`` in ``fmt`` ('prw' or 'mot'). Each identity walks
    through 2 cameras (so cross-camera search has positives), 3-8 frames in each."""
    if fmt not in ("prw", "mot"):
        raise ValueError(f"unknown format '{fmt}'; use prw or mot")
    if frames_per_camera < 4 or identities < 1 or cameras < 1:
        raise DatasetError(
            "a synthetic dataset needs --frames >= 4 (people walk 3 or more frames), "
            "--identities >= 1 and --cameras >= 1"
        )
    rng = np.random.default_rng(seed)
    shirts, trousers = palette(rng, identities), palette(rng, identities)[::-1]
    people = [
        Person(i + 1, shirts[i], trousers[(i * 3) % identities], float(rng.uniform(0.9, 1.3)))
        for i in range(identities)
    ]
    w, h = size_wh
    # plan: per camera, per frame, list of (person, x, y)
    plan: dict[int, dict[int, list[tuple[Person, float, float]]]] = {
        c: {f: [] for f in range(frames_per_camera)} for c in range(cameras)
    }
    for p in people:
        for cam in rng.choice(cameras, size=min(2, cameras), replace=False):
            start = int(rng.integers(0, frames_per_camera - 3))
            length = int(rng.integers(3, min(8, frames_per_camera - start) + 1))
            # walking pace: at most ~12 px per frame, so consecutive boxes overlap as in video
            x0 = float(rng.uniform(60, w - 60))
            x1 = float(np.clip(x0 + rng.uniform(-12, 12) * (length - 1), 30, w - 30))
            y = float(rng.uniform(h * 0.55, h - 5))
            for k in range(length):
                t = k / max(1, length - 1)
                plan[int(cam)][start + k].append((p, float(x0 + (x1 - x0) * t), y))
    labeled = unlabeled = 0
    frame_names: list[str] = []
    annotations: dict[str, list[tuple[int, float, float, float, float]]] = {}
    for cam in range(cameras):
        base = rng.integers(60, 120, size=3)
        for f in range(frames_per_camera):
            img = np.empty((h, w, 3), np.uint8)
            img[:] = base
            img[: h // 3] = base + 40  # a horizon, for a little structure
            img = np.clip(
                img.astype(np.int16) + rng.integers(-12, 12, size=img.shape), 0, 255
            ).astype(np.uint8)
            rows = []
            entries = list(plan[cam][f])
            for _ in range(unlabeled_per_frame):
                stranger = Person(
                    -2,
                    tuple(int(v) for v in rng.integers(0, 255, 3)),  # type: ignore[arg-type]
                    tuple(int(v) for v in rng.integers(0, 255, 3)),  # type: ignore[arg-type]
                    float(rng.uniform(0.8, 1.1)),
                )
                entries.append(
                    (stranger, float(rng.uniform(30, w - 30)), float(rng.uniform(h * 0.5, h - 5)))
                )
            entries.sort(key=lambda e: e[2])  # farther (higher up) people drawn first
            for person, x, y in entries:
                x1, y1, x2, y2 = draw_person(img, person, x, y)
                rows.append((person.pid, x1, y1, x2 - x1, y2 - y1))
                labeled += person.pid > 0
                unlabeled += person.pid < 0
            name = (
                f"c{cam + 1}s1_{(f + 1) * 25:06d}"
                if fmt == "prw"
                else f"SYN-{cam + 1:02d}/{f + 1:06d}"
            )
            frame_names.append(name)
            annotations[name] = rows
            _save_frame(root, fmt, name, img)
    queries = _write_annotations(root, fmt, frame_names, annotations, size_wh, frames_per_camera)
    return SyntheticTruth(len(frame_names), labeled, unlabeled, identities, queries)


def _save_frame(root: Path, fmt: str, name: str, img: NDArray[np.uint8]) -> None:
    if fmt == "prw":
        path = root / "frames" / f"{name}.jpg"
    else:
        seq, number = name.split("/")
        path = root / seq / "img1" / f"{number}.jpg"
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), img, [cv2.IMWRITE_JPEG_QUALITY, 95])


def _write_annotations(
    root: Path,
    fmt: str,
    names: list[str],
    ann: dict[str, list[tuple[int, float, float, float, float]]],
    size_wh: tuple[int, int],
    seq_len: int,
) -> int:
    first_seen: dict[int, tuple[str, tuple[float, float, float, float]]] = {}
    for name in names:
        for pid, x, y, bw, bh in ann[name]:
            if pid > 0 and pid not in first_seen:
                first_seen[pid] = (name, (x, y, bw, bh))
    if fmt == "prw":
        from scipy.io import savemat

        (root / "annotations").mkdir(parents=True, exist_ok=True)
        for name in names:
            arr = np.array(ann[name], np.float64).reshape(-1, 5)
            savemat(str(root / "annotations" / f"{name}.jpg.mat"), {"box_new": arr})
        savemat(
            str(root / "frame_test.mat"),
            {"img_index_test": np.array(names, dtype=object).reshape(-1, 1)},
        )
        lines = [
            f"{pid} {b[0]:.1f} {b[1]:.1f} {b[2]:.1f} {b[3]:.1f} {name}"
            for pid, (name, b) in sorted(first_seen.items())
        ]
        (root / "query_info.txt").write_text("\n".join(lines) + "\n")
        return len(lines)
    by_seq: dict[str, list[str]] = {}
    for name in names:
        seq, number = name.split("/")
        for pid, x, y, bw, bh in ann[name]:
            flag = 1 if pid > 0 else 0  # passers-by are 'ignore' (unlabeled) boxes
            vis = 1.0 if pid > 0 else 0.5
            by_seq.setdefault(seq, []).append(
                f"{int(number)},{pid if pid > 0 else 900 + len(by_seq.get(seq, []))},"
                f"{x:.1f},{y:.1f},{bw:.1f},{bh:.1f},{flag},1,{vis}"
            )
    queries = 0
    for seq, rows in by_seq.items():
        (root / seq / "gt").mkdir(parents=True, exist_ok=True)
        (root / seq / "gt" / "gt.txt").write_text("\n".join(rows) + "\n")
        ini = configparser.ConfigParser()
        ini.optionxform = str  # type: ignore[assignment,method-assign]
        ini["Sequence"] = {
            "name": seq,
            "imDir": "img1",
            "frameRate": "10",
            "seqLength": str(seq_len),
            "imWidth": str(size_wh[0]),
            "imHeight": str(size_wh[1]),
            "imExt": ".jpg",
        }
        with open(root / seq / "seqinfo.ini", "w") as fh:
            ini.write(fh)
        ids: dict[str, set[str]] = {}
        for r in rows:
            parts = r.split(",")
            if parts[6] == "1":
                ids.setdefault(parts[1], set()).add(parts[0])
        queries += sum(len(frames) >= 2 for frames in ids.values())
    return queries
