"""Real re-ID sets from labelled MOT sequences: each ground-truth identity becomes a person
of a Market-1501-layout set, with its query from early in its life and its gallery from late
in it (written as cameras 1 and 2, so the protocol scores matches across that time gap).

Labels are people's, not a tracker's. Where a sequence's ids are tracks and one person
re-enters under a new id (PETS09-S2L1), ``merges`` joins them; without it, the same person's
other track would count as a wrong match."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from evaluation.datasets import SearchDataset, frame_images, load_mot
from pipeline.core.crops import crop_boxes
from pipeline.core.errors import DatasetError
from pipeline.core.outputs import make_dir


@dataclass(frozen=True)
class Sighting:
    dataset: int  # which of the sequences
    frame: int  # position in that dataset's frames
    number: int  # the sequence's own frame number
    box: tuple[float, float, float, float]


@dataclass(frozen=True)
class Pick:
    folder: str  # query or bounding_box_test
    pid: int
    camera: int
    sighting: Sighting


def parse_merges(specs: Sequence[str]) -> dict[tuple[str, int], int]:
    """``SEQ:A=B`` (sequence SEQ's id A is the same person as its id B) -> {(SEQ, A): B}."""
    out: dict[tuple[str, int], int] = {}
    for spec in specs:
        try:
            seq, pair = spec.rsplit(":", 1)
            a, b = (int(v) for v in pair.split("="))
        except ValueError:
            raise DatasetError(
                f"--merge {spec!r}: write SEQ:A=B (sequence SEQ's id A is its id B)"
            ) from None
        out[(seq, a)] = b
    return out


def _people(
    roots: Sequence[Path],
    merges: dict[tuple[str, int], int] | None,
    min_sightings: int,
    min_height: float,
) -> tuple[list[SearchDataset], dict[tuple[str, int], list[Sighting]]]:
    """The sequences, and each labelled person's usable sightings (at least ``min_height``
    pixels tall, inside the frame; at least ``min_sightings`` of them), keyed by (sequence,
    id after merges), in the sequences' order."""
    merges = merges or {}
    people: dict[tuple[str, int], list[Sighting]] = {}
    datasets = [load_mot(Path(r)) for r in roots]
    for d, ds in enumerate(datasets):
        for i, f in enumerate(ds.frames):
            if f.gt_ids is None:
                continue
            number = int(f.name.rsplit("/", 1)[1])
            for j, box in enumerate(f.boxes):
                x1, y1, x2, y2 = (float(v) for v in box)
                if f.pids[j] < 0 or y2 - y1 < min_height or x1 <= 0 or y1 <= 0:
                    continue
                gt = int(f.gt_ids[j])
                while (f.camera, gt) in merges:
                    gt = merges[(f.camera, gt)]
                people.setdefault((f.camera, gt), []).append(
                    Sighting(d, i, number, (x1, y1, x2, y2))
                )
    chosen = {k: v for k, v in sorted(people.items()) if len(v) >= min_sightings}
    if not chosen:
        raise DatasetError(
            f"no labelled person has {min_sightings} boxes of {min_height:.0f}+ pixels; "
            "lower --min-sightings"
        )
    return datasets, chosen


def write_mot_reid_set(
    roots: Sequence[Path],
    out_dir: Path,
    merges: dict[tuple[str, int], int] | None = None,
    per_identity: int = 8,
    min_sightings: int = 12,
    queries_per_identity: int = 4,
    min_height: float = 48.0,
    progress: Callable[[int], object] | None = None,
) -> tuple[int, int, int]:
    """Write the set; returns (identities, query images, gallery images). An identity needs
    ``min_sightings`` labelled boxes at least ``min_height`` pixels tall and inside the frame:
    up to ``queries_per_identity`` queries spread over its first third (each scored on its
    own, as Market-1501's several queries per person are), up to ``per_identity`` gallery
    images spread over its last third."""
    datasets, chosen = _people(roots, merges, min_sightings, min_height)
    wanted: dict[tuple[int, int], list[Pick]] = {}
    for pid, seen in enumerate(chosen.values(), start=1):
        seen.sort(key=lambda s: s.number)
        third = max(1, len(seen) // 3)
        first, last = seen[:third], seen[-third:]
        asked = np.linspace(0, len(first) - 1, min(queries_per_identity, len(first))).round()
        spread = np.linspace(0, len(last) - 1, min(per_identity, len(last))).round()
        picks = [Pick("query", pid, 1, first[int(p)]) for p in sorted(set(asked))]
        picks += [Pick("bounding_box_test", pid, 2, last[int(p)]) for p in sorted(set(spread))]
        for pick in picks:
            wanted.setdefault((pick.sighting.dataset, pick.sighting.frame), []).append(pick)
    make_dir(out_dir / "query")
    make_dir(out_dir / "bounding_box_test")
    counts = {"query": 0, "bounding_box_test": 0}
    for d, ds in enumerate(datasets):
        for i, image in frame_images(ds):
            if progress is not None:
                progress(1)
            for pick in wanted.get((d, i), []):
                s = pick.sighting
                crop = crop_boxes(image, np.asarray([s.box], np.float32))[0]
                name = f"{pick.pid:04d}_c{pick.camera}s1_{s.number:06d}_00.jpg"
                path = out_dir / pick.folder / name
                cv2.imwrite(str(path), crop, [cv2.IMWRITE_JPEG_QUALITY, 95])
                counts[pick.folder] += 1
    return len(chosen), counts["query"], counts["bounding_box_test"]


def write_mot_train_set(
    roots: Sequence[Path],
    out_dir: Path,
    merges: dict[tuple[str, int], int] | None = None,
    per_identity: int = 24,
    min_sightings: int = 12,
    min_height: float = 48.0,
    progress: Callable[[int], object] | None = None,
) -> tuple[int, int, int]:
    """A labelled *training* split (``bounding_box_train/``) from MOT sequences: up to
    ``per_identity`` images spread over each person's whole life, the camera being the
    sequence (c1 for the first ``roots`` entry, c2 for the second, ...), so camera-style
    augmentation sees one style per sequence. Returns (identities, images, cameras).

    Train on some sequences and evaluate on a set written from the others: the same people
    never sit on both sides."""
    datasets, chosen = _people(roots, merges, min_sightings, min_height)
    wanted: dict[tuple[int, int], list[tuple[int, Sighting]]] = {}
    for pid, seen in enumerate(chosen.values(), start=1):
        seen.sort(key=lambda s: s.number)
        for p in sorted(set(np.linspace(0, len(seen) - 1, min(per_identity, len(seen))).round())):
            s = seen[int(p)]
            wanted.setdefault((s.dataset, s.frame), []).append((pid, s))
    folder = make_dir(out_dir / "bounding_box_train")
    written = 0
    for d, ds in enumerate(datasets):
        for i, image in frame_images(ds):
            if progress is not None:
                progress(1)
            for pid, s in wanted.get((d, i), []):
                crop = crop_boxes(image, np.asarray([s.box], np.float32))[0]
                name = f"{pid:04d}_c{d + 1}s1_{s.number:06d}_00.jpg"
                cv2.imwrite(str(folder / name), crop, [cv2.IMWRITE_JPEG_QUALITY, 95])
                written += 1
    return len(chosen), written, len({k[0] for k in chosen})
