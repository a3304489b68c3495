"""FAISS index persistence: exact inner-product search (vectors are L2-normalised, so the
inner product is the cosine similarity) keyed by detection primary key (``IndexIDMap2``),
and, past ``ann_min_vectors``, an approximate inverted-file index beside it for unfiltered
queries.

The exact store stays the source of truth. The approximate index (IVF: k-means cells, 8-bit
scalar-quantised vectors, a quarter of the exact store's memory) proposes a candidate pool
from the ``NPROBE`` cells nearest the query, and the pool is re-scored exactly against the
stored vectors, so the similarities returned are exact and only the recall of the pool is
approximate (`prowl bench-search` measures it). Re-ID galleries are clusters of sightings of
the same people, which is what cells capture: at a million 512-d sightings IVF recalled more
than HNSW at a third of the latency and a quarter of the build time (README, Speed).
Filtered queries stay exact: a selective filter is an exact scan over the allowed ids, a broad
one filters the pool and falls back to the exact scan when fewer than k survive.

The IVF index holds the first ``ntotal`` rows of the exact store, keyed by detection id: new
rows are added as they arrive, removals are applied to both, and it is trained again from the
rows when the gallery has grown ``RETRAIN_GROWTH``-fold since it was trained. It is saved
beside the index (``.ivf``), tied to the exact index's digest; a missing or stale one is
rebuilt from the exact store."""

from __future__ import annotations

import errno
import logging
import math
import os
import secrets
import threading
from pathlib import Path

import faiss
import numpy as np
from numpy.typing import NDArray

from pipeline.core.files import sha256_of

log = logging.getLogger(__name__)

INDEX_TYPE = "IDMap2,Flat (inner product)"
ANN_TYPE = "IVF,SQ8 (inner product) + exact re-scoring"
ANN_MIN_VECTORS = 200_000  # below this an exact scan is fast enough (about 10 ms at 512-d)
NPROBE = 64  # cells visited per query
POOL = 100  # candidates re-scored exactly (at least 4k)
RETRAIN_GROWTH = 8  # train the cells again when the gallery is this many times larger


def nlist_for(n: int) -> int:
    """Cells for ``n`` vectors: about 4·sqrt(n), a power of two within 256..16384."""
    return int(min(16384, max(256, 2 ** round(math.log2(4 * math.sqrt(max(n, 1)))))))


SELECTIVE = 0.5  # filters keeping less than this fraction are scanned exactly


def _unique() -> str:
    """A temporary file's tag: two writers of one index, in two processes or in two threads
    of one (a server and its ingest job), never share a temporary file."""
    return f"{os.getpid()}.{threading.get_ident()}.{secrets.token_hex(4)}"


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
        self._ann_trained_n = 0  # gallery size when the cells were trained
        self._ids_cache: NDArray[np.int64] | None = None

    @property
    def approximate(self) -> bool:
        """Whether unfiltered queries go through the IVF index (the gallery is large)."""
        return len(self) >= self.ann_min_vectors

    def _ann_index(self) -> faiss.Index:
        """The IVF index over every stored vector: trained, grown or caught up on demand."""
        n = len(self)
        if self._ann is not None and n > RETRAIN_GROWTH * max(self._ann_trained_n, 1):
            self._ann = None  # the gallery outgrew its cells
        xb = self._stored()
        if self._ann is None:
            nlist = nlist_for(n)
            ann = faiss.index_factory(self.dim, f"IVF{nlist},SQ8", faiss.METRIC_INNER_PRODUCT)
            sample = min(n, max(64 * nlist, 100_000), 200_000)
            rows = np.sort(np.random.default_rng(0).choice(n, sample, replace=False))
            log.info(
                "training the approximate index: %d cells on %d of %d vectors", nlist, sample, n
            )
            ann.train(np.ascontiguousarray(xb[rows]))
            self._ann, self._ann_trained_n = ann, n
        ann = self._ann
        have = int(ann.ntotal)
        if have < n:
            ids = self.ids()
            for start in range(have, n, 100_000):
                stop = min(n, start + 100_000)
                ann.add_with_ids(np.ascontiguousarray(xb[start:stop]), ids[start:stop])
        return ann

    @classmethod
    def load(cls, path: Path, dim: int, ann_min_vectors: int = ANN_MIN_VECTORS) -> VectorIndex:
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
        loaded = cls(dim, index, ann_min_vectors)
        ann_file = _ann_path(path)
        made_for = ann_file.with_name(ann_file.name + ".for")
        same = made_for.is_file() and digest_file.is_file()
        if same and made_for.read_text().strip() == digest_file.read_text().strip():
            try:
                ann = faiss.read_index(str(ann_file))
                if ann.d == dim and ann.ntotal <= index.ntotal:
                    loaded._ann = ann  # caught up from the exact store when next searched
                    loaded._ann_trained_n = int(ann.ntotal)
            except Exception as exc:  # damaged: rebuilt from the exact store when needed
                log.info("approximate index %s unreadable (%s); rebuilt when needed", ann_file, exc)
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
            self._ann_index()  # incremental: it grows with the gallery

    def remove(self, ids: NDArray[np.int64]) -> int:
        if len(ids) == 0:
            return 0
        removed = int(
            self._index.remove_ids(faiss.IDSelectorBatch(np.ascontiguousarray(ids, np.int64)))
        )
        if removed:
            self._ids_cache = None
            if self._ann is not None:  # the same rows leave both: order is kept
                self._ann.remove_ids(faiss.IDSelectorBatch(np.ascontiguousarray(ids, np.int64)))
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
        """IVF candidate pool, re-scored exactly; filtered rows kept only if allowed, with
        an exact scan when the pool holds fewer than k allowed rows."""
        ann = self._ann_index()
        pool = min(len(self), max(POOL, 4 * k))
        params = faiss.SearchParametersIVF(nprobe=NPROBE)  # type: ignore[call-arg]
        _, cand = ann.search(q, pool, params=params)
        allowed = None if allowed_ids is None else np.asarray(allowed_ids, np.int64)
        out_s = np.full((len(q), k), -np.inf, np.float32)
        out_i = np.full((len(q), k), -1, np.int64)
        for row, found in enumerate(cand):
            ids = found[found >= 0]
            if allowed is not None:
                ids = ids[np.isin(ids, allowed)]
                if len(ids) < k:
                    s, i = self._search_exact(q[row : row + 1], k, allowed)
                    out_s[row], out_i[row] = s[0], i[0]
                    continue
            if not len(ids):
                continue
            scores = self._index.reconstruct_batch(ids) @ q[row]
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

    def _save_ann(self, path: Path, index_digest: str) -> None:
        """The IVF index beside the exact one (a minute or more to train at a million
        vectors). It holds the exact store's first rows, so one that is missing or belongs to
        another version of the index is only a cost: it is rebuilt; re-scoring keeps
        similarities exact."""
        ann_file = _ann_path(path)
        made_for = ann_file.with_name(
            ann_file.name + ".for"
        )  # the digest of the index it belongs to
        made_for.unlink(missing_ok=True)
        if self._ann is None or not self.approximate:
            ann_file.unlink(missing_ok=True)
            return
        tmp = ann_file.with_name(f".{ann_file.name}.{_unique()}.tmp")
        try:
            faiss.write_index(self._ann, str(tmp))
            os.replace(tmp, ann_file)
            made_for.write_text(index_digest + "\n")
        except RuntimeError:  # the exact index is saved; the IVF index is rebuilt when needed
            log.warning("could not write %s; it is rebuilt when needed", ann_file)
        finally:
            tmp.unlink(missing_ok=True)

    def reconstruct(self, ident: int) -> NDArray[np.float32]:
        return np.asarray(self._index.reconstruct(int(ident)), dtype=np.float32)

    def reconstruct_many(self, idents: list[int]) -> NDArray[np.float32]:
        """The stored vectors of these ids, one row each, in one call."""
        if not idents:
            return np.zeros((0, self.dim), np.float32)
        ids = np.asarray(idents, dtype=np.int64)
        return np.asarray(self._index.reconstruct_batch(ids), dtype=np.float32)

    def save(self, path: Path) -> None:
        """Atomic: written to a temporary file in the same folder, then renamed over."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{_unique()}.tmp")
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
            self._save_ann(path, digest)
        finally:
            tmp.unlink(missing_ok=True)
            tmp.with_name(tmp.name + ".sha256").unlink(missing_ok=True)


def _ann_path(path: Path) -> Path:
    return path.with_name(path.name + ".ivf")


def _digest_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")
