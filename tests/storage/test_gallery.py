"""Gallery behaviour on both backends: rows and index agree, repairs, exact filtered search.
Vectors here are random unit vectors: the gallery is under test, not an embedder."""

import logging
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.core.errors import GalleryError, QueryError
from storage.gallery import Gallery, NewDetection, SearchFilters

DIM = 16


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.normal(size=(n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _fill(
    gallery: Gallery,
    rng: np.random.Generator,
    cameras: tuple[str, ...] = ("north", "south"),
    frames: int = 20,
    per_frame: int = 3,
) -> dict[str, object]:
    emb = gallery.embedder_row("fake", DIM)
    vectors = {}
    for cam in cameras:
        video = gallery.upsert_video(
            Path(f"/footage/{cam}.avi"), f"hash-{cam}", cam, 10.0, 640, 480, frames
        )
        run = gallery.start_run(video, emb, "det", f"key-{cam}", 1)
        for start in range(0, frames, 5):  # several transactions, whole frames each
            batch = []
            for f in range(start, start + 5):
                vecs = _unit(rng, per_frame)
                for j in range(per_frame):
                    batch.append(
                        NewDetection(
                            f,
                            f / 10.0,
                            (j * 10.0, 0.0, j * 10.0 + 8, 20.0),
                            0.5 + j / 10,
                            vecs[j],
                            b"jpeg",
                        )
                    )
            ids = gallery.commit_frames(
                run, batch, next_frame=start + 5, frames_processed=start + 5
            )
            for i, d in zip(ids, batch, strict=True):
                vectors[int(i)] = (cam, d)
        gallery.finish_run(run)
    return {"embedder": emb, "vectors": vectors}


def test_rows_and_index_agree_and_persist(db_url: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    g = Gallery(db_url, tmp_path)
    filled = _fill(g, rng)
    emb = filled["embedder"]
    vectors = filled["vectors"]
    assert len(g.index_for(emb.id)) == len(vectors) == 120
    g.close()

    g2 = Gallery(db_url, tmp_path, must_exist=True)
    ident, (cam, det) = next(iter(vectors.items()))
    hits = g2.search(emb.id, det.embedding, k=1)
    assert hits[0].detection_id == ident and hits[0].similarity == pytest.approx(1.0, abs=1e-5)
    assert hits[0].camera_id == cam and hits[0].frame_index == det.frame_index
    stats = g2.stats()
    assert stats["detections"] == 120 and stats["embedders"][0]["index_size"] == 120
    g2.close()


def test_index_repaired_after_loss_or_damage(
    db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rng = np.random.default_rng(1)
    g = Gallery(db_url, tmp_path)
    emb = _fill(g, rng)["embedder"]
    path = g.index_path("fake")
    g.close()

    caplog.set_level(logging.INFO)
    path.unlink()  # lost index (or a new data dir): built from the rows, no alarm
    g = Gallery(db_url, tmp_path, must_exist=True)
    assert len(g.index_for(emb.id)) == 120
    assert "120 vectors added" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    g.close()

    path.write_bytes(b"garbage")  # damaged index: rebuilt with a warning, not an error
    g = Gallery(db_url, tmp_path, must_exist=True)
    assert len(g.index_for(emb.id)) == 120
    assert "does not match its content digest" in caplog.text
    g.close()

    path.write_bytes(b"garbage")  # and without its digest file (an older prowl's index)
    path.with_name(path.name + ".sha256").unlink()
    g = Gallery(db_url, tmp_path, must_exist=True)
    assert len(g.index_for(emb.id)) == 120
    assert "unreadable FAISS index" in caplog.text
    g.close()


def test_damage_that_keeps_the_index_size_is_caught_by_its_digest(
    db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rng = np.random.default_rng(4)
    g = Gallery(db_url, tmp_path)
    emb = _fill(g, rng)["embedder"]
    query = _unit(rng, 1)[0]
    truth = [h.detection_id for h in g.search(emb.id, query, k=10)]
    path = g.index_path("fake")
    g.close()
    raw = bytearray(path.read_bytes())
    size = len(raw)
    vec_bytes = 120 * DIM * 4
    start = size - vec_bytes - 120 * 8 - 200  # inside the stored vectors, before the id map
    for pos in range(start, start + 400, 7):
        raw[pos] ^= 0x55
    path.write_bytes(bytes(raw))
    assert path.stat().st_size == size
    g = Gallery(db_url, tmp_path, must_exist=True)
    assert [h.detection_id for h in g.search(emb.id, query, k=10)] == truth
    assert "does not match its content digest" in caplog.text
    g.close()


def test_no_false_repair_warning_on_force_or_newer_rows(
    db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rng = np.random.default_rng(5)
    g = Gallery(db_url, tmp_path)
    emb = _fill(g, rng, cameras=("north",))["embedder"]
    g.close()
    # Rows committed by another writer after this index file was saved: caught up quietly.
    other = Gallery(db_url, tmp_path)
    video = other.upsert_video(Path("/footage/late.avi"), "hash-late", "late", 10.0, 64, 48, 5)
    run = other.start_run(video, emb, "det", "key-late", 1)
    batch = [NewDetection(0, 0.0, (0.0, 0.0, 8.0, 20.0), 0.9, _unit(rng, 1)[0], b"jpeg")]
    ids = other.commit_frames(run, batch, next_frame=1, frames_processed=1)
    other._dirty.clear()  # it dies before saving its index
    other.engine.dispose()
    g = Gallery(db_url, tmp_path, must_exist=True)
    assert int(ids[0]) in set(g.index_for(emb.id).ids().tolist())
    # --force on a finished run: its vectors leave the index on purpose.
    g.reset_run(run)
    g.close()
    g = Gallery(db_url, tmp_path, must_exist=True)
    assert int(ids[0]) not in set(g.index_for(emb.id).ids().tolist())
    g.close()
    assert "repaired" not in caplog.text


def test_vectors_without_rows_are_dropped(db_url: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    g = Gallery(db_url, tmp_path)
    emb = _fill(g, rng)["embedder"]
    g.index_for(emb.id).add(np.array([999_999], np.int64), _unit(rng, 1))  # a crash leftover
    g._dirty.add(emb.id)
    g.close()
    g = Gallery(db_url, tmp_path, must_exist=True)
    idx = g.index_for(emb.id)
    assert len(idx) == 120 and 999_999 not in set(idx.ids().tolist())
    g.close()


@pytest.mark.parametrize("k", [1, 7, 30, 500])
@pytest.mark.parametrize(
    "flt",
    [
        SearchFilters(cameras=("south",)),
        SearchFilters(videos=("north.avi",)),
        SearchFilters(from_s=0.5, to_s=1.2),
        SearchFilters(cameras=("north",), from_s=1.0),
        SearchFilters(),
    ],
)
def test_filters_are_exact(db_url: str, tmp_path: Path, k: int, flt: SearchFilters) -> None:
    rng = np.random.default_rng(3)
    g = Gallery(db_url, tmp_path)
    filled = _fill(g, rng)
    emb, vectors = filled["embedder"], filled["vectors"]

    def passes(cam: str, d: NewDetection) -> bool:
        return (
            (not flt.cameras or cam in flt.cameras)
            and (not flt.videos or f"{cam}.avi" in flt.videos)
            and (flt.from_s is None or d.timestamp_s >= flt.from_s)
            and (flt.to_s is None or d.timestamp_s <= flt.to_s)
        )

    matching = {i: d for i, (cam, d) in vectors.items() if passes(cam, d)}
    query = _unit(rng, 1)[0]
    hits = g.search(emb.id, query, k=k, filters=flt)
    assert len(hits) == min(k, len(matching))
    assert all(h.detection_id in matching for h in hits)
    expected = sorted(matching, key=lambda i: -float(matching[i].embedding @ query))[:k]
    assert [h.detection_id for h in hits] == expected  # exact, not approximate
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    g.close()


def test_similarity_floor_and_unknown_filters(db_url: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    g = Gallery(db_url, tmp_path)
    emb = _fill(g, rng)["embedder"]
    q = _unit(rng, 1)[0]
    hits = g.search(emb.id, q, k=200, filters=SearchFilters(min_similarity=0.3))
    assert hits and all(h.similarity >= 0.3 for h in hits)
    with pytest.raises(QueryError, match="no camera west"):
        g.search(emb.id, q, k=5, filters=SearchFilters(cameras=("west",)))
    with pytest.raises(QueryError, match=r"no video 'east\.avi'"):
        g.search(emb.id, q, k=5, filters=SearchFilters(videos=("east.avi",)))
    g.close()


def test_embedder_choice_is_read_from_the_gallery(db_url: str, tmp_path: Path) -> None:
    g = Gallery(db_url, tmp_path)
    with pytest.raises(GalleryError, match="empty"):
        g.embedder_for_query(None)
    _fill(g, np.random.default_rng(5))
    assert g.embedder_for_query(None).name == "fake"
    with pytest.raises(GalleryError, match="built with fake"):
        g.embedder_for_query("hsv")
    with pytest.raises(GalleryError, match="dimension"):
        g.embedder_row("fake", DIM + 1)
    g.close()


def test_missing_or_unreachable_gallery(tmp_path: Path) -> None:
    with pytest.raises(GalleryError, match="no gallery at"):
        Gallery(f"sqlite:///{tmp_path / 'none.db'}", tmp_path, must_exist=True)
    with pytest.raises(GalleryError, match="cannot open database"):
        Gallery("postgresql+psycopg://postgres@127.0.0.1:1/x", tmp_path)
    with pytest.raises(GalleryError, match="not a database URL"):
        Gallery("::::", tmp_path)


@pytest.fixture(scope="module")
def filled_sqlite(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    d = tmp_path_factory.mktemp("prop")
    g = Gallery(f"sqlite:///{d / 'g.db'}", d)
    filled = _fill(g, np.random.default_rng(6), cameras=("a", "b", "c"), frames=30)
    yield g, filled
    g.close()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    k=st.integers(1, 300),
    cams=st.sets(st.sampled_from(["a", "b", "c"])),
    window=st.tuples(st.none() | st.floats(0, 3), st.none() | st.floats(0, 3)),
    floor=st.none() | st.floats(-1, 1),
    seed=st.integers(0, 2**31),
)
def test_filter_properties(filled_sqlite, k, cams, window, floor, seed) -> None:  # type: ignore[no-untyped-def]
    g, filled = filled_sqlite
    flt = SearchFilters(
        cameras=tuple(sorted(cams)), from_s=window[0], to_s=window[1], min_similarity=floor
    )
    q = _unit(np.random.default_rng(seed), 1)[0]
    matching = [
        i
        for i, (cam, d) in filled["vectors"].items()
        if (not cams or cam in cams)
        and (window[0] is None or d.timestamp_s >= window[0])
        and (window[1] is None or d.timestamp_s <= window[1])
        and (floor is None or float(d.embedding @ q) >= floor - 1e-6)
    ]
    hits = g.search(filled["embedder"].id, q, k=k, filters=flt)
    # Every hit passes every filter, and none is missing while k allows it.
    assert abs(len(hits) - min(k, len(matching))) <= (1 if floor is not None else 0)
    assert all(h.detection_id in set(matching) for h in hits)
    sims = [h.similarity for h in hits]
    assert sims == sorted(sims, reverse=True)
