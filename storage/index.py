"""FAISS index persistence: exact inner-product search (vectors are L2-normalised, so the
inner product is the cosine similarity) keyed by detection primary key (``IndexIDMap2``),
and, past ``ann_min_vectors``, an approximate HNSW graph beside it for unfiltered queries.

The exact store stays the source of truth: the HNSW graph (8-bit scalar-quantised vectors,
a quarter of the memory of the exact ones) proposes a candidate pool, and the pool is
re-scored exactly against the stored vectors, so the similarities returned are exact and only
the recall of the pool is approximate (measured by `prowl bench-search`). Filtered queries
stay exact: a selective filter is an exact scan over the allowed ids, a broad one filters the
pool and falls back to the exact scan when fewer than k survive. The graph holds the exact
store's rows in the same order; a removal (rare: --force, abandoned runs) drops it, and it is
rebuilt from the exact store when next needed. It is saved beside the index (``.hnsw``)."""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from numpy.typing import NDArray

from pipeline.assets import sha256_of

log = logging.getLogger(__name__)

INDEX_TYPE = "IDMap2,Flat (inner product)"
ANN_TYPE = "HNSW32,SQ8 (inner product) + exact re-scoring"
ANN_MIN_VECTORS = 200_000  # below this an exact scan is fast enough (about 10 ms at 512-d)
HNSW_M = 32
EF_CONSTRUCTION = 40
EF_SEARCH = 128
POOL = 100  # candidates re-scored exactly (at least 4k)
SELECTIVE = 0.5  # filters keeping less than this fraction are scanned exactly


class VectorIndex:
    def __init__(
        self,
        dim: int,
        index: faiss.IndexIDMap2 | None = None,
        ann_min_vectors: int = ANN_MIN_VECTORS,
    ) -> None:
        self.dim = dim
        self._index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self.ann_min_vectors = ann_min_vectors
        self._ann: faiss.Index | None = None
        self._ids_cache: NDArray[np.int64] | None = None

    @property
    def approximate(self) -> bool:
        """Whether unfiltered queries go through the HNSW graph (the gallery is large)."""
        return len(self) >= self.ann_min_vectors

    def _ann_index(self) -> faiss.Index:
        """The HNSW graph over every stored vector, built or caught up on demand."""
        n = len(self)
        if self._ann is None:
            self._ann = faiss.index_factory(
                self.dim, f"HNSW{HNSW_M},SQ8", faiss.METRIC_INNER_PRODUCT
            )
            hnsw: Any = faiss.downcast_index(self._ann)
            hnsw.hnsw.efConstruction = EF_CONSTRUCTION
        ann = self._ann
        have = int(ann.ntotal)
        if have < n:
            xb = self._stored()
            if not ann.is_trained:  # the SQ8 ranges: a sample of the vectors
                step = max(1, n // 100_000)
                ann.train(np.ascontiguousarray(xb[::step]))
            if n - have > 10_000:
                log.info("building the approximate index: %d vectors ...", n - have)
            for start in range(have, n, 50_000):
                ann.add(np.ascontiguousarray(xb[start : min(n, start + 50_000)]))
        return ann

    @classmethod
    def load(cls, path: Path, dim: int) -> VectorIndex:
        """Read ``path``; raises ValueError if it is unreadable, of another dimension, or not
        the file its content digest (``<file>.sha256``, written by ``save``) describes: damage
        that keeps the file's size and shape would otherwise shift ranks silently."""
        digest_file = _digest_path(path)
        if digest_file.is_file():
            recorded = digest_file.read_text().strip()
            if recorded != sha256_of(path):
                raise ValueError(f"FAISS index {path} does not match its content digest")
        try:
            index = faiss.read_index(str(path))
        except Exception as exc:  # faiss raises RuntimeError with a C++ trace
            raise ValueError(f"unreadable FAISS index {path}: {str(exc).splitlines()[0]}") from None
        if index.d != dim:
            raise ValueError(f"FAISS index {path} has dimension {index.d}, expected {dim}")
        if not isinstance(index, faiss.IndexIDMap2):
            raise ValueError(f"FAISS index {path} is not an ID-mapped index")
        loaded = cls(dim, index)
        graph = _graph_path(path)
        made_for = graph.with_name(graph.name + ".for")
        same = made_for.is_file() and digest_file.is_file()
        if same and made_for.read_text().strip() == digest_file.read_text().strip():
            try:
                ann = faiss.read_index(str(graph))
                if ann.d == dim and ann.ntotal <= index.ntotal:
                    loaded._ann = ann  # caught up from the exact store when next searched
            except Exception as exc:  # damaged: rebuilt from the exact store when needed
                log.info("approximate index %s unreadable (%s); rebuilt when needed", graph, exc)
        return loaded

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def ids(self) -> NDArray[np.int64]:
        if self._ids_cache is None or len(self._ids_cache) != len(self):
            self._ids_cache = faiss.vector_to_array(self._index.id_map).astype(np.int64)
        return self._ids_cache

    def _stored(self) -> NDArray[np.float32]:
        """The exact store's vectors, (n, dim), as a zero-copy view in insertion order."""
        n = len(self)
        flat = faiss.downcast_index(self._index.index)
        return faiss.rev_swig_ptr(flat.get_xb(), n * self.dim).reshape(n, self.dim)  # type: ignore[attr-defined]

    def add(self, ids: NDArray[np.int64], vectors: NDArray[np.float32]) -> None:
        if len(ids) == 0:
            return
        vecs = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(ids), self.dim)
        self._index.add_with_ids(vecs, np.ascontiguousarray(ids, dtype=np.int64))
        self._ids_cache = None
        if self._ann is not None and self.approximate:
            self._ann_index()  # incremental: the graph grows with the gallery

    def remove(self, ids: NDArray[np.int64]) -> int:
        if len(ids) == 0:
            return 0
        removed = int(
            self._index.remove_ids(faiss.IDSelectorBatch(np.ascontiguousarray(ids, np.int64)))
        )
        if removed:
            self._ann = None  # positions shifted: rebuilt from the exact store when needed
            self._ids_cache = None
        return removed

    def search(
        self, queries: NDArray[np.float32], k: int, allowed_ids: NDArray[np.int64] | None = None
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Top-``k`` (similarities, ids) per query row; ids are -1 past the end. With
        ``allowed_ids`` only those ids are searched, so filtered searches are exact."""
        q = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        k = max(1, min(k, len(self))) if len(self) else 1
        if self.approximate and (allowed_ids is None or len(allowed_ids) >= SELECTIVE * len(self)):
            return self._search_ann(q, k, allowed_ids)
        if allowed_ids is None and len(q) == 1 and len(self):
            return self._scan_one(q[0], k)
        return self._search_exact(q, k, allowed_ids)

    def _search_exact(
        self, q: NDArray[np.float32], k: int, allowed_ids: NDArray[np.int64] | None
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        if allowed_ids is None:
            sims, ids = self._index.search(q, k)
        else:
            sel = faiss.IDSelectorBatch(np.ascontiguousarray(allowed_ids, dtype=np.int64))
            params = faiss.SearchParameters(sel=sel)  # type: ignore[call-arg]
            sims, ids = self._index.search(q, k, params=params)
        return sims.astype(np.float32), ids.astype(np.int64)

    def _search_ann(
        self, q: NDArray[np.float32], k: int, allowed_ids: NDArray[np.int64] | None
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """HNSW candidate pool, re-scored exactly; filtered rows kept only if allowed, with
        an exact scan when the pool holds fewer than k allowed rows."""
        ann = self._ann_index()
        pool = min(len(self), max(POOL, 4 * k))
        params = faiss.SearchParametersHNSW(efSearch=max(EF_SEARCH, pool))  # type: ignore[attr-defined]
        _, cand = ann.search(q, pool, params=params)
        xb, all_ids = self._stored(), self.ids()
        allowed = None if allowed_ids is None else np.asarray(allowed_ids, np.int64)
        out_s = np.full((len(q), k), -np.inf, np.float32)
        out_i = np.full((len(q), k), -1, np.int64)
        for row, positions in enumerate(cand):
            positions = positions[positions >= 0]
            ids = all_ids[positions]
            if allowed is not None:
                keep = np.isin(ids, allowed)
                positions, ids = positions[keep], ids[keep]
                if len(ids) < k:
                    s, i = self._search_exact(q[row : row + 1], k, allowed)
                    out_s[row], out_i[row] = s[0], i[0]
                    continue
            scores = xb[positions] @ q[row]
            order = np.argsort(-scores, kind="stable")[:k]
            out_s[row, : len(order)], out_i[row, : len(order)] = scores[order], ids[order]
        return out_s, out_i

    def _scan_one(
        self, query: NDArray[np.float32], k: int
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Exact top-k for one query as one BLAS mat-vec over FAISS's own vector storage
        (a zero-copy view). FAISS scans a single query on one thread without BLAS; on 2
        cores this is about 2x faster for the same exact answer (see `prowl bench-search`)."""
        n = len(self)
        scores = self._stored() @ query
        top = np.argpartition(-scores, k - 1)[:k] if k < n else np.arange(n)
        top = top[np.argsort(-scores[top], kind="stable")]
        ids = self.ids()[top]
        return scores[top][None].astype(np.float32), ids[None].astype(np.int64)

    def _save_graph(self, path: Path, index_digest: str) -> None:
        """The HNSW graph beside the index (minutes to rebuild at a million vectors). Graph
        positions are exact-store positions, so a graph that is missing, damaged or older is
        only a cost: it is caught up or rebuilt, and re-scoring keeps similarities exact."""
        graph = _graph_path(path)
        made_for = graph.with_name(graph.name + ".for")  # the digest of the index it belongs to
        made_for.unlink(missing_ok=True)
        if self._ann is None or not self.approximate:
            graph.unlink(missing_ok=True)
            return
        tmp = graph.with_name(f".{graph.name}.{os.getpid()}.tmp")
        try:
            faiss.write_index(self._ann, str(tmp))
            os.replace(tmp, graph)
            made_for.write_text(index_digest + "\n")
        except RuntimeError:  # the exact index is saved; the graph is rebuilt when needed
            log.warning("could not write %s; it is rebuilt when needed", graph)
        finally:
            tmp.unlink(missing_ok=True)

    def reconstruct(self, ident: int) -> NDArray[np.float32]:
        return np.asarray(self._index.reconstruct(int(ident)), dtype=np.float32)

    def save(self, path: Path) -> None:
        """Atomic: written to a temporary file in the same folder, then renamed over."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            try:
                faiss.write_index(self._index, str(tmp))
            except RuntimeError as exc:  # FAISS reports a full disk as a C++ assertion
                full = "No space left" in str(exc)
                raise OSError(
                    errno.ENOSPC if full else errno.EIO,
                    "No space left on device" if full else "FAISS could not write the index",
                    str(path),
                ) from None
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            digest = sha256_of(tmp)
            # An index without a digest file is read unchecked, so the old digest goes before
            # the index is replaced and the new one after: whatever a crash interrupts, the
            # disk holds a complete index with its own digest or with none.
            digest_tmp = tmp.with_name(tmp.name + ".sha256")
            digest_tmp.write_text(digest + "\n")
            _digest_path(path).unlink(missing_ok=True)
            os.replace(tmp, path)
            os.replace(digest_tmp, _digest_path(path))
            self._save_graph(path, digest)
        finally:
            tmp.unlink(missing_ok=True)
            tmp.with_name(tmp.name + ".sha256").unlink(missing_ok=True)


def _graph_path(path: Path) -> Path:
    return path.with_name(path.name + ".hnsw")


def _digest_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")
