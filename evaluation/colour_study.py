"""How well `pipeline.core.colours` names clothing colours, on real labelled people: crops of
every identity of MOT-format sequences (the ground truth's boxes), each identity's upper- and
lower-body colour labelled by hand once (a CSV: sequence, identity, upper, lower; made by
looking at `contact_sheets`), and every crop's prediction scored against its identity's label.
Crops of one person are not independent, so intervals resample identities (bootstrap)."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from evaluation.datasets import frame_images, load_mot
from pipeline.core.colours import PALETTE, clothing_colour_sets
from pipeline.core.crops import crop_boxes
from pipeline.core.errors import DatasetError

Key = tuple[str, int]  # (sequence, ground-truth identity)


def identity_crops(
    root: Path, per_identity: int = 6, min_height_px: int = 60, min_visibility: float = 0.5
) -> dict[Key, list[NDArray[np.uint8]]]:
    """Up to ``per_identity`` crops of every labelled identity, spread evenly over the frames
    where it is at least ``min_height_px`` tall and ``min_visibility`` visible."""
    ds = load_mot(root, min_visibility=min_visibility)
    where: dict[Key, list[tuple[int, int]]] = defaultdict(list)  # frame position, box index
    for i, f in enumerate(ds.frames):
        assert f.gt_ids is not None
        for j in range(len(f.boxes)):
            height = f.boxes[j][3] - f.boxes[j][1]
            if f.pids[j] >= 0 and height >= min_height_px:
                where[(f.camera, int(f.gt_ids[j]))].append((i, j))
    wanted: dict[int, list[tuple[Key, int]]] = defaultdict(list)
    for key, seen in where.items():
        picks = np.linspace(0, len(seen) - 1, min(per_identity, len(seen))).round().astype(int)
        for p in sorted(set(picks.tolist())):
            i, j = seen[p]
            wanted[i].append((key, j))
    out: dict[Key, list[NDArray[np.uint8]]] = defaultdict(list)
    for i, image in frame_images(ds):
        for key, j in wanted.get(i, []):
            crop = crop_boxes(image, ds.frames[i].boxes[j : j + 1])[0]
            out[key].append(np.ascontiguousarray(crop))
    return dict(sorted(out.items()))


def contact_sheets(
    crops: dict[Key, list[NDArray[np.uint8]]], out: Path, per_sheet: int = 12
) -> list[Path]:
    """PNG sheets to label from: a row per identity (its crops side by side) named seq:id."""
    out.mkdir(parents=True, exist_ok=True)
    keys = list(crops)
    paths = []
    for n in range(0, len(keys), per_sheet):
        rows = []
        for key in keys[n : n + per_sheet]:
            tiles = [cv2.resize(c, (64, 160), interpolation=cv2.INTER_AREA) for c in crops[key]]
            row = np.full((180, 140 + 68 * 6, 3), 255, np.uint8)
            cv2.putText(row, f"{key[0][:10]}", (2, 80), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
            cv2.putText(row, f"id {key[1]}", (2, 100), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
            for t, tile in enumerate(tiles[:6]):
                row[10:170, 140 + 68 * t : 204 + 68 * t] = tile
            rows.append(row)
        path = out / f"sheet-{n // per_sheet + 1:02d}.png"
        cv2.imwrite(str(path), np.concatenate(rows, axis=0))
        paths.append(path)
    return paths


def read_labels(path: Path) -> dict[Key, tuple[str, str]]:
    """sequence,identity,upper,lower rows; colours from the palette."""
    labels = {}
    with open(path, newline="") as fh:
        for row in csv.DictReader(line for line in fh if not line.startswith("#")):
            up, low = row["upper"].strip(), row["lower"].strip()
            for c in (up, low):
                if c not in PALETTE:
                    raise DatasetError(
                        f"{path}: '{c}' is not a palette colour ({', '.join(PALETTE)})"
                    )
            labels[(row["sequence"].strip(), int(row["identity"]))] = (up, low)
    return labels


def score(
    crops: dict[Key, list[NDArray[np.uint8]]],
    labels: dict[Key, tuple[str, str]],
    resamples: int = 2000,
) -> dict[str, Any]:
    """Per-crop accuracy of upper and lower colour against the identity's label, with 95 %
    intervals from resampling identities, and confusion matrices (rows: label, columns:
    prediction, 'none' when no colour was named)."""
    names = [*PALETTE, "none"]
    conf = {part: np.zeros((len(PALETTE), len(names)), np.int64) for part in ("upper", "lower")}
    # per identity: crops, upper right, lower right, upper in set, lower in set, set sizes
    per_identity: list[tuple[int, ...]] = []
    for key, images in crops.items():
        if key not in labels:
            continue
        up_true, low_true = labels[key]
        tally = [len(images), 0, 0, 0, 0, 0, 0]
        for crop in images:
            ups, lows = clothing_colour_sets(crop)
            up = ups[0] if ups else None
            low = lows[0] if lows else None
            conf["upper"][PALETTE.index(up_true), names.index(up or "none")] += 1
            conf["lower"][PALETTE.index(low_true), names.index(low or "none")] += 1
            tally[1] += up == up_true
            tally[2] += low == low_true
            tally[3] += up_true in ups
            tally[4] += low_true in lows
            tally[5] += len(ups)
            tally[6] += len(lows)
        per_identity.append(tuple(tally))
    arr = np.asarray(per_identity, np.float64).reshape(-1, 7)
    rng = np.random.default_rng(0)

    def acc(rows: NDArray[np.float64], col: int) -> float:
        return float(rows[:, col].sum() / max(rows[:, 0].sum(), 1))

    boot = rng.integers(0, len(arr), (resamples, len(arr))) if len(arr) else np.zeros((0, 0), int)
    out: dict[str, Any] = {"identities": len(arr), "crops": int(arr[:, 0].sum()) if len(arr) else 0}
    for col, part in ((1, "upper"), (2, "lower")):
        out[part] = {
            "accuracy": acc(arr, col),
            "ci95": _interval([acc(arr[b], col) for b in boot]),
            # what a filter on the part finds: the label among the stored colour(s)
            "filter_recall": acc(arr, col + 2),
            "filter_recall_ci95": _interval([acc(arr[b], col + 2) for b in boot]),
            "colours_per_crop": acc(arr, col + 4),
            "confusion": {
                "labels": list(PALETTE),
                "predicted": names,
                "counts": conf[part].tolist(),
            },
        }
    labelled = [k for k in crops if k in labels]
    out["majority_class_accuracy"] = {  # what always naming the commonest colour scores
        part: max(sum(len(crops[k]) for k in labelled if labels[k][i] == c) for c in PALETTE)
        / max(out["crops"], 1)
        for i, part in enumerate(("upper", "lower"))
    }
    return out


def _interval(samples: list[float]) -> list[float] | None:
    if not samples:
        return None
    return [float(np.percentile(samples, 2.5)), float(np.percentile(samples, 97.5))]


def study(
    root: Path, labels_path: Path, out: Path, dev: tuple[str, ...] = ("PETS09-S2L1",)
) -> dict[str, Any]:
    """Crops, contact sheets, scores per sequence group (the ``dev`` sequences chose the
    thresholds; the others are held out), study.json and study.html with the confusion
    matrices."""
    import json

    crops = identity_crops(root)
    labels = read_labels(labels_path)
    unlabelled = sorted(set(crops) - set(labels))
    sheets = contact_sheets(crops, out / "sheets")
    held = sorted({k[0] for k in crops} - set(dev))
    groups = {
        "dev (thresholds chosen here): " + ", ".join(dev): {
            k: v for k, v in crops.items() if k[0] in dev
        },
        "held out: " + ", ".join(held): {k: v for k, v in crops.items() if k[0] not in dev},
        "all": crops,
    }
    result = {
        "labels": str(labels_path),
        "unlabelled_identities": [f"{s}:{i}" for s, i in unlabelled],
        "groups": {name: score(group, labels) for name, group in groups.items()},
        "sheets": [str(p) for p in sheets],
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "study.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "study.html").write_text(_html(result))
    return result


def _html(result: dict[str, Any]) -> str:
    import html

    parts = [
        "<!doctype html><meta charset='utf-8'><title>prowl colour study</title>",
        "<style>body{font:14px system-ui;margin:24px}td,th{padding:2px 6px;text-align:right}"
        "table{border-collapse:collapse;margin-bottom:18px}</style>",
        "<h1>Clothing colour against hand labels</h1>",
    ]
    for name, r in result["groups"].items():
        parts.append(f"<h2>{html.escape(name)}: {r['identities']} people, {r['crops']} crops</h2>")
        for part in ("upper", "lower"):
            p = r[part]
            ci = p["ci95"] or [float("nan")] * 2
            parts.append(
                f"<p>{part}: accuracy {p['accuracy']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]; filter "
                f"recall {p['filter_recall']:.3f} with {p['colours_per_crop']:.2f} colours per "
                f"crop; always the commonest colour: {r['majority_class_accuracy'][part]:.3f}</p>"
            )
            conf = p["confusion"]
            head = "".join(f"<th>{html.escape(c)}</th>" for c in conf["predicted"])
            rows = []
            for label, counts in zip(conf["labels"], conf["counts"], strict=True):
                total = sum(counts)
                if not total:
                    continue
                cells = "".join(
                    f"<td style='background:rgba(31,111,235,{c / total:.2f})'>{c or ''}</td>"
                    for c in counts
                )
                rows.append(f"<tr><th>{html.escape(label)}</th>{cells}</tr>")
            parts.append(f"<table><tr><th>label ↓ / said →</th>{head}</tr>{''.join(rows)}</table>")
    return "\n".join(parts)
