"""The approximate index of large galleries: it finds what the exact scan finds (recall), the
similarities it returns are exact, filters stay exact, and removals never resurface."""

from __future__ import annotations

import numpy as np
import pytest

from storage.index import VectorIndex


def _gallery(n: int, dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Sightings of people: n vectors around n/20 identities, as a re-ID gallery holds."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n // 20, dim)).astype(np.float32)
    x = centres[rng.integers(0, len(centres), n)]
    x = x + rng.standard_normal((n, dim)).astype(np.float32) * (
        0.6 / np.sqrt(dim)
    ) * np.linalg.norm(x, axis=1, keepdims=True)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    queries = x[rng.integers(0, n, 40)] + rng.standard_normal((40, dim)).astype(np.float32) * (
        0.3 / np.sqrt(dim)
    )
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    return x.astype(np.float32), queries.astype(np.float32)


@pytest.fixture(scope="module")
def built() -> tuple[VectorIndex, VectorIndex, np.ndarray, np.ndarray]:
    x, q = _gallery(20_000, 64)
    ids = np.arange(1000, 1000 + len(x), dtype=np.int64)
    approx, exact = VectorIndex(64, ann_min_vectors=5_000), VectorIndex(64, ann_min_vectors=10**9)
    for start in range(0, len(x), 4_000):  # added in ingest-sized pieces: built incrementally
        approx.add(ids[start : start + 4_000], x[start : start + 4_000])
        exact.add(ids[start : start + 4_000], x[start : start + 4_000])
    return approx, exact, x, q


def test_approximate_recall_at_10_against_exact(built) -> None:  # type: ignore[no-untyped-def]
    approx, exact, _x, q = built
    assert approx.approximate and not exact.approximate
    found = 0
    for row in q:
        s_a, i_a = approx.search(row[None], 10)
        _, i_e = exact.search(row[None], 10)
        found += len(set(i_a[0]) & set(i_e[0]))
        assert np.all(np.diff(s_a[0]) <= 1e-6)  # best first
    assert found / (10 * len(q)) >= 0.95


def test_returned_similarities_are_exact(built) -> None:  # type: ignore[no-untyped-def]
    approx, _exact, x, q = built
    sims, ids = approx.search(q[:5], 10)
    for row, (s, i) in enumerate(zip(sims, ids, strict=True)):
        np.testing.assert_allclose(s, x[i - 1000] @ q[row], atol=1e-5)


@pytest.mark.parametrize("keep_every", [50, 1])
def test_filtered_search_is_exact(built, keep_every) -> None:  # type: ignore[no-untyped-def]
    """A selective filter (2%) is scanned exactly; a broad one (all ids) filters the pool."""
    approx, exact, _x, q = built
    allowed = np.arange(1000, 21_000, keep_every, dtype=np.int64)
    for row in q[:10]:
        _, i_a = approx.search(row[None], 10, allowed)
        _, i_e = exact.search(row[None], 10, allowed)
        assert set(i_a[0]) <= set(allowed.tolist())
        if keep_every > 1:
            assert list(i_a[0]) == list(i_e[0])


def test_removed_vectors_never_come_back() -> None:
    x, q = _gallery(8_000, 32, seed=1)
    ids = np.arange(len(x), dtype=np.int64)
    index = VectorIndex(32, ann_min_vectors=1_000)
    index.add(ids, x)
    _, before = index.search(q[:1], 10)
    gone = before[0][:5]
    assert index.remove(gone) == 5
    _, after = index.search(q[:1], 10)
    assert not set(gone.tolist()) & set(after[0].tolist())
    assert index.approximate and len(index) == 7_995


def test_approximate_index_is_saved_and_reused_only_with_its_index(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import shutil

    x, q = _gallery(6_000, 32, seed=2)
    index = VectorIndex(32, ann_min_vectors=1_000)
    index.add(np.arange(len(x), dtype=np.int64), x)
    expected = index.search(q[:3], 10)
    path = tmp_path / "e.faiss"
    index.save(path)
    assert (tmp_path / "e.faiss.ivf").is_file()
    shutil.copy(tmp_path / "e.faiss.ivf", tmp_path / "old.ivf")
    shutil.copy(tmp_path / "e.faiss.ivf.for", tmp_path / "old.ivf.for")

    loaded = VectorIndex.load(path, 32)
    loaded.ann_min_vectors = 1_000
    assert loaded._ann is not None and loaded._ann.ntotal == len(x)  # not trained again
    np.testing.assert_array_equal(loaded.search(q[:3], 10)[1], expected[1])

    gone = expected[1][0][:5]  # removed rows leave both indexes and never come back
    index.remove(gone)
    assert index._ann is not None and index._ann.ntotal == len(x) - 5
    assert not set(gone.tolist()) & set(index.search(q[:1], 10)[1][0].tolist())
    index.save(path)

    # an approximate index saved with another version of the exact one is not used
    shutil.copy(tmp_path / "old.ivf", tmp_path / "e.faiss.ivf")
    shutil.copy(tmp_path / "old.ivf.for", tmp_path / "e.faiss.ivf.for")
    stale = VectorIndex.load(path, 32)
    assert stale._ann is None


def test_bench_search_on_a_gallerys_own_vectors(tmp_path, capsys, vtest_path) -> None:  # type: ignore[no-untyped-def]
    """--data real: the stored vectors of a real gallery, grown by noisy copies, through the
    gallery's own index."""
    import json

    import run_pipeline

    data = ["--data-dir", str(tmp_path / "g")]
    ingest = ["ingest", str(vtest_path), "--end", "1", "--reid", "hsv", "-q", *data]
    assert run_pipeline.main(ingest) == 0
    capsys.readouterr()
    argv = ["bench-search", "--data", "real", "--n", "500", "--queries", "20", "--k", "5"]
    assert run_pipeline.main([*argv, *data, "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["n"] == 500 and r["dim"] == 192 and 0 < r["real_vectors"] < 500
    assert r["recall_at_5"] == 1.0  # below the IVF threshold the scan is exact
    # the queries are real sightings held out of the gallery (every 10th stored vector)
    assert r["queries_from"] == "held-out real vectors"
    assert r["queries"] == -(-(r["real_vectors"] + r["queries"]) // 10)
