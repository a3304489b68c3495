"""Synthetic re-ID sets written in the real Market-1501, MSMT17 and MARS layouts, so the
readers and `prowl eval-reid` are exercised without the (unshippable) real data. Each
identity is a drawn figure (clothing colours are the identity) seen by two or more cameras;
cameras differ in background and lighting, so cross-camera matching is not trivial."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from evaluation.synthetic import Person, draw_person, palette
from pipeline.core.errors import DatasetError

_H, _W = 128, 64


def person_crop(rng: np.random.Generator, person: Person, cam: int) -> NDArray[np.uint8]:
    """A detector-tight crop: the figure fills most of it, as a person box does."""
    base = np.array([40 + 30 * (cam % 4), 60 + 20 * (cam % 3), 50 + 25 * (cam % 5)], np.float32)
    h = int(110 * person.scale * rng.uniform(1.05, 1.2))
    w = int(40 * person.scale * rng.uniform(1.3, 1.6))
    img = np.clip(base + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)
    draw_person(img, person, w / 2 + rng.uniform(-3, 3), h - rng.uniform(1, 5))
    gain = 0.75 + 0.12 * (cam % 4) + rng.uniform(-0.05, 0.05)  # each camera's own light
    img = np.clip(img.astype(np.float32) * gain, 0, 255).astype(np.uint8)
    return cv2.resize(img, (_W, _H), interpolation=cv2.INTER_AREA)


def people_of(rng: np.random.Generator, n: int) -> list[Person]:
    shirts, trousers = palette(rng, n), palette(rng, n)[::-1]
    return [
        Person(i + 1, shirts[i], trousers[(i * 3) % n], float(rng.uniform(0.95, 1.15)))
        for i in range(n)
    ]


def write_reid_synthetic(
    root: Path, fmt: str, identities: int = 12, cameras: int = 3, per_camera: int = 3, seed: int = 0
) -> tuple[int, int]:
    """Write a query/gallery split of ``identities`` people in layout ``fmt``
    (market1501 | msmt17 | mars); returns (query samples, gallery samples)."""
    if identities < 2 or cameras < 2 or per_camera < 1:
        raise DatasetError("a synthetic re-ID set needs >= 2 identities, >= 2 cameras, >= 1 image")
    rng = np.random.default_rng(seed)
    people = people_of(rng, identities)
    # samples[pid] = list of (camera, list of crops); one query per identity, the rest gallery
    views: dict[int, list[tuple[int, list[NDArray[np.uint8]]]]] = {}
    for p in people:
        cams = rng.choice(
            cameras, size=min(cameras, 2 + int(rng.integers(0, cameras - 1))), replace=False
        )
        views[p.pid] = [
            (int(c), [person_crop(rng, p, int(c)) for _ in range(per_camera)]) for c in sorted(cams)
        ]
    match fmt:
        case "market1501":
            return _write_market(root, views)
        case "msmt17":
            return _write_msmt17(root, views)
        case "mars":
            return _write_mars(root, views)
        case _:
            raise DatasetError(f"synthetic re-ID layouts: market1501, msmt17, mars (not '{fmt}')")


def _write_market(
    root: Path, views: dict[int, list[tuple[int, list[NDArray[np.uint8]]]]]
) -> tuple[int, int]:
    (root / "query").mkdir(parents=True)
    (root / "bounding_box_test").mkdir()
    nq = ng = 0
    for pid, per_cam in views.items():
        for k, (cam, crops) in enumerate(per_cam):
            for j, crop in enumerate(crops):
                name = f"{pid:04d}_c{cam + 1}s1_{j:06d}_00.jpg"
                to_query = k == 0 and j == 0
                cv2.imwrite(str(root / ("query" if to_query else "bounding_box_test") / name), crop)
                nq, ng = nq + to_query, ng + (not to_query)
    junk = np.zeros((_H, _W, 3), np.uint8)
    cv2.imwrite(str(root / "bounding_box_test" / "-1_c1s1_000000_00.jpg"), junk)  # ignored
    return nq, ng


def _write_msmt17(
    root: Path, views: dict[int, list[tuple[int, list[NDArray[np.uint8]]]]]
) -> tuple[int, int]:
    query: list[str] = []
    gallery: list[str] = []
    for label, (pid, per_cam) in enumerate(views.items()):
        folder = root / "test" / f"{pid:04d}"
        folder.mkdir(parents=True)
        for k, (cam, crops) in enumerate(per_cam):
            for j, crop in enumerate(crops):
                rel = (
                    f"{pid:04d}/{pid:04d}_{k * 10 + j:03d}_{cam + 1:02d}_0303morning_{j:04d}_0.jpg"
                )
                cv2.imwrite(str(root / "test" / rel), crop)
                (query if k == 0 and j == 0 else gallery).append(f"{rel} {label}")
    (root / "list_query.txt").write_text("\n".join(query) + "\n")
    (root / "list_gallery.txt").write_text("\n".join(gallery) + "\n")
    return len(query), len(gallery)


def _write_mars(
    root: Path, views: dict[int, list[tuple[int, list[NDArray[np.uint8]]]]]
) -> tuple[int, int]:
    from scipy.io import savemat

    (root / "info").mkdir(parents=True)
    names: list[str] = []
    tracks, query_idx = [], []
    for pid, per_cam in views.items():
        folder = root / "bbox_test" / f"{pid:04d}"
        folder.mkdir(parents=True)
        for k, (cam, crops) in enumerate(per_cam):  # one tracklet per camera
            start = len(names) + 1
            for f, crop in enumerate(crops):
                name = f"{pid:04d}C{cam + 1}T{k + 1:04d}F{f + 1:03d}.jpg"
                cv2.imwrite(str(folder / name), crop)
                names.append(name)
            tracks.append([start, len(names), pid, cam + 1])
            if k == 0:
                query_idx.append(len(tracks))
    (root / "info" / "test_name.txt").write_text("\n".join(names) + "\n")
    savemat(str(root / "info" / "tracks_test_info.mat"), {"track_test_info": np.asarray(tracks)})
    savemat(str(root / "info" / "query_IDX.mat"), {"query_IDX": np.asarray(query_idx)})
    return len(query_idx), len(tracks) - len(query_idx)
