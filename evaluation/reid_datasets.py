"""Re-ID benchmark layouts, read as torchreid reads them: Market-1501, DukeMTMC-reID and
CUHK03-NP (``bounding_box_test/``, ``query/``; names ``PID_cCAM...``), MSMT17
(``list_query.txt``/``list_gallery.txt`` over ``test/``), MARS (tracklets: ``bbox_test/``,
``info/tracks_test_info.mat``, ``info/query_IDX.mat``, ``info/test_name.txt``) and PRW's
ground-truth boxes cropped from its frames."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.core.errors import DatasetError
from reid.crop_folders import ReidSample, market_split

REID_FORMATS = ("market1501", "dukemtmc", "cuhk03-np", "msmt17", "mars", "prw")
_EXPECTS = {
    "market1501": "query/ and bounding_box_test/ of PID_cCAM... images",
    "dukemtmc": "query/ and bounding_box_test/ of PID_cCAM... images",
    "cuhk03-np": "[detected/]query/ and bounding_box_test/ of PID_cCAM... images",
    "msmt17": "[MSMT17_V1/]list_query.txt, list_gallery.txt and test/",
    "mars": "bbox_test/ and info/{test_name.txt,tracks_test_info.mat,query_IDX.mat}",
    "prw": "frames/, annotations/, frame_test.mat and query_info.txt",
}


@dataclass(frozen=True)
class ReidDataset:
    name: str
    root: Path
    query: tuple[ReidSample, ...]
    gallery: tuple[ReidSample, ...]

    @property
    def tracklets(self) -> bool:
        return any(len(s.paths) > 1 for s in self.query + self.gallery)


def _market(root: Path, name: str) -> ReidDataset:
    if (root / "detected" / "query").is_dir() and not (root / "query").is_dir():
        root = root / "detected"  # CUHK03-NP: the detected boxes, as papers report
    for sub in ("query", "bounding_box_test"):
        if not (root / sub).is_dir():
            raise DatasetError(f"{root}: no {sub}/ folder")
    return ReidDataset(
        name, root, market_split(root / "query"), market_split(root / "bounding_box_test")
    )


def _msmt17(root: Path) -> ReidDataset:
    for sub in ("MSMT17_V2", "MSMT17_V1"):
        if (root / sub / "list_query.txt").is_file():
            root = root / sub
    test = next((root / d for d in ("test", "mask_test_v2") if (root / d).is_dir()), None)
    if test is None or not (root / "list_query.txt").is_file():
        raise DatasetError(f"{root}: no list_query.txt with a test/ folder")

    def read(list_file: Path) -> tuple[ReidSample, ...]:
        out = []
        for lineno, line in enumerate(list_file.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rel, label = line.split()
                cam = int(Path(rel).name.split("_")[2]) - 1
                out.append(ReidSample((test / rel,), int(label), cam))
            except (ValueError, IndexError):
                raise DatasetError(
                    f"{list_file}:{lineno}: expected 'PID/PID_IDX_CAM_....jpg LABEL'"
                ) from None
        return tuple(out)

    gallery_list = root / "list_gallery.txt"
    if not gallery_list.is_file():
        raise DatasetError(f"{root}: no list_gallery.txt")
    return ReidDataset("MSMT17", root, read(root / "list_query.txt"), read(gallery_list))


def _mars(root: Path) -> ReidDataset:
    from scipy.io import loadmat

    info = root / "info"
    needed = [info / "test_name.txt", info / "tracks_test_info.mat", info / "query_IDX.mat"]
    missing = [p.name for p in needed if not p.is_file()]
    if missing or not (root / "bbox_test").is_dir():
        raise DatasetError(f"{root}: MARS needs bbox_test/ and info/{', info/'.join(missing)}")
    names = [n for n in (info / "test_name.txt").read_text().split() if n]
    tracks = np.asarray(loadmat(str(info / "tracks_test_info.mat"))["track_test_info"], np.int64)
    query_idx = np.asarray(loadmat(str(info / "query_IDX.mat"))["query_IDX"]).reshape(-1) - 1
    samples = []
    for start, end, pid, cam in tracks:
        files = names[start - 1 : end]
        if not files:
            raise DatasetError(f"{info / 'tracks_test_info.mat'}: a track points past test_name")
        paths = tuple(root / "bbox_test" / f[:4] / f for f in files)
        samples.append(ReidSample(paths, int(pid), int(cam) - 1))
    query_set = set(int(i) for i in query_idx)
    query = tuple(samples[i] for i in sorted(query_set) if samples[i].pid != -1)
    gallery = tuple(s for i, s in enumerate(samples) if i not in query_set and s.pid != -1)
    return ReidDataset("MARS", root, query, gallery)


def _prw(root: Path) -> ReidDataset:
    """PRW's labeled ground-truth boxes as a re-ID set: its queries against every labeled box
    of the test frames (the query's own box is removed by the same-camera rule)."""
    from evaluation.datasets import load_prw, prw_camera

    ds = load_prw(root)
    frame_path = {f.name: f.path for f in ds.frames}

    def cam(name: str) -> int:
        return int(prw_camera(name).lstrip("c") or 0)

    query = tuple(
        ReidSample((frame_path[q.frame],), q.pid, cam(q.frame), tuple(map(float, q.box)))  # type: ignore[arg-type]
        for q in ds.queries
    )
    gallery = tuple(
        ReidSample((f.path,), int(pid), cam(f.name), tuple(map(float, box)))  # type: ignore[arg-type]
        for f in ds.frames
        for box, pid in zip(f.boxes, f.pids, strict=True)
        if pid >= 0
    )
    return ReidDataset("PRW (cropped)", root, query, gallery)


def load_reid_dataset(root: Path, fmt: str) -> ReidDataset:
    """Read ``root`` in layout ``fmt``; a folder in no known layout says what each expects."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such dataset folder")
    if fmt not in REID_FORMATS:
        raise DatasetError(f"unknown re-ID format '{fmt}'; use one of {', '.join(REID_FORMATS)}")
    try:
        match fmt:
            case "market1501":
                ds = _market(root, "Market-1501")
            case "dukemtmc":
                ds = _market(root, "DukeMTMC-reID")
            case "cuhk03-np":
                ds = _market(root, "CUHK03-NP")
            case "msmt17":
                ds = _msmt17(root)
            case "mars":
                ds = _mars(root)
            case _:
                ds = _prw(root)
    except DatasetError as exc:
        raise DatasetError(f"{exc} (the {fmt} layout expects {_EXPECTS[fmt]})") from None
    if not ds.query or not ds.gallery:
        raise DatasetError(f"{root}: the {fmt} layout was found but holds no query or gallery")
    return ds
