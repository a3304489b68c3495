"""Very large galleries (the seed's "future directions"): a re-ID set's gallery grown with
distractor people, scored at each size (mAP, rank-1) with the search latency of prowl's own
index (exact, then IVF from ``storage.index.ANN_MIN_VECTORS``).

Distractors are people who are none of the queries: crops from other footage (a folder of
images), else drawn figures (``evaluation.reid_synthetic``) through the same embedder. A
gallery larger than the crops at hand is grown by perturbed copies of their vectors (Gaussian
noise, re-normalised; the method is returned with the vectors), which keeps the distribution
of real embeddings' directions rather than of random vectors."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from pipeline.core.errors import DatasetError
from pipeline.core.vectors import l2_normalise
from reid import Embedder

SIZES = (0, 100, 1_000, 10_000, 100_000, 1_000_000)
SYNTHETIC_PEOPLE = 2_000  # distinct drawn figures before copies are perturbed
NOISE_SIGMA = 0.02  # per dimension, on unit vectors of 512 dims: copies keep cosine ~0.9


@dataclass(frozen=True)
class CurvePoint:
    distractors: int
    gallery: int
    mAP: float
    rank1: float
    search_p50_ms: float
    search_p99_ms: float


def images_in(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp")
    )


def distractor_vectors(
    embedder: Embedder, source: Path | None, n: int, batch: int = 64, seed: int = 0
) -> tuple[NDArray[np.float32], str]:
    """``n`` distractor vectors and how they were made."""
    if source is not None:
        paths = images_in(source)
        if not paths:
            raise DatasetError(f"{source} holds no images (.jpg, .png, .bmp) to use as distractors")
        crops = []
        for p in paths:
            img = cv2.imread(str(p), cv2.IMREAD_COLOR)
            if img is None:
                raise DatasetError(f"{p}: not a readable image")
            crops.append(np.asarray(img, np.uint8))
        what = f"{len(crops)} crops of {source}"
    else:
        from evaluation.reid_synthetic import people_of, person_crop

        rng = np.random.default_rng(seed)
        people = people_of(rng, min(n, SYNTHETIC_PEOPLE))
        crops = [person_crop(rng, person, cam=7) for person in people]
        what = f"{len(crops)} drawn figures (evaluation.reid_synthetic)"
    base = np.concatenate(
        [embedder.embed(crops[i : i + batch]) for i in range(0, len(crops), batch)]
    ).astype(np.float32)
    if n <= len(base):
        return base[:n], what
    rng = np.random.default_rng(seed + 1)
    out = np.empty((n, base.shape[1]), np.float32)
    out[: len(base)] = base
    for start in range(len(base), n, 100_000):
        stop = min(n, start + 100_000)
        picks = base[np.arange(start, stop) % len(base)]
        noise = rng.normal(0.0, NOISE_SIGMA, picks.shape).astype(np.float32)
        out[start:stop] = l2_normalise(picks + noise)
    return out, f"{what}, grown to {n} by copies with Gaussian noise σ={NOISE_SIGMA} per dimension"


def _ap_and_first(
    q: NDArray[np.float32],
    g: NDArray[np.float32],
    valid: NDArray[np.bool_],
    true: NDArray[np.bool_],
    distractor_sims_desc: NDArray[np.float32],
) -> tuple[float, bool]:
    """AP and rank-1 hit of one query: each true match's rank counts the valid gallery
    samples and the distractors that score above it (the ranking `reid_metrics` scores)."""
    sims = g @ q
    matches = np.sort(sims[valid & true])[::-1]
    others = np.sort(sims[valid & ~true])
    precisions = []
    for j, s in enumerate(matches):
        above = (len(others) - np.searchsorted(others, s, side="right")) + np.searchsorted(
            -distractor_sims_desc, -s, side="left"
        )
        precisions.append((j + 1) / (j + 1 + above))
    first_above = precisions[0] == 1.0 if precisions else False
    return float(np.mean(precisions)), bool(first_above)


def curve(
    q: NDArray[np.float32],
    q_pids: list[int],
    q_cams: list[int],
    g: NDArray[np.float32],
    g_pids: list[int],
    g_cams: list[int],
    distractors: NDArray[np.float32],
    sizes: tuple[int, ...] = SIZES,
    latency_queries: int = 50,
) -> list[CurvePoint]:
    """mAP, rank-1 and search latency with the first ``s`` distractors added, for each size
    ``s`` up to ``len(distractors)`` (the Market-1501 protocol: same identity and camera
    removed; queries without a match left out)."""
    from storage.index import VectorIndex

    gp, gc = np.asarray(g_pids), np.asarray(g_cams)
    index = VectorIndex(g.shape[1])
    index.add(np.arange(len(g), dtype=np.int64), g)
    added = 0
    out = []
    for size in [s for s in sizes if s <= len(distractors)]:
        d = distractors[:size]
        if size > added:
            ids = np.arange(len(g) + added, len(g) + size, dtype=np.int64)
            index.add(ids, distractors[added:size])
            added = size
        aps, firsts = [], []
        for i, vector in enumerate(q):
            valid = ~((gp == q_pids[i]) & (gc == q_cams[i]))
            true = gp == q_pids[i]
            if not (valid & true).any():
                continue
            ds = np.sort(d @ vector)[::-1] if size else np.zeros(0, np.float32)
            ap, first = _ap_and_first(vector, g, valid, true, ds)
            aps.append(ap)
            firsts.append(first)
        times = []
        for vector in q[:latency_queries]:
            t = time.perf_counter()
            index.search(vector[None, :], 20)
            times.append(1000 * (time.perf_counter() - t))
        out.append(
            CurvePoint(
                size,
                len(g) + size,
                float(np.mean(aps)) if aps else 0.0,
                float(np.mean(firsts)) if firsts else 0.0,
                float(np.percentile(times, 50)),
                float(np.percentile(times, 99)),
            )
        )
    return out


def plot(points: list[CurvePoint], title: str, path: Path) -> Path:
    """mAP and rank-1 (left axis) and search latency (right axis) against gallery size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    sizes = [p.gallery for p in points]
    ax.plot(sizes, [p.mAP for p in points], "o-", label="mAP")
    ax.plot(sizes, [p.rank1 for p in points], "s-", label="rank-1")
    ax.set_xscale("log")
    ax.set_xlabel("gallery size (real gallery + distractors)")
    ax.set_ylim(0, 1)
    ax.grid(True, which="both", alpha=0.3)
    right = ax.twinx()
    right.plot(sizes, [p.search_p50_ms for p in points], "^--", color="grey", label="search p50")
    right.set_ylabel("search latency p50 (ms, one query)")
    handles = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="lower left")
    ax.set_title(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
