"""FAISS index persistence: exact inner-product search (vectors are L2-normalised, so the
inner product is the cosine similarity) keyed by detection primary key (``IndexIDMap2``)."""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

import faiss
import numpy as np
from numpy.typing import NDArray

from pipeline.assets import sha256_of

log = logging.getLogger(__name__)

INDEX_TYPE = "IDMap2,Flat (inner product)"


class VectorIndex:
    def __init__(self, dim: int, index: faiss.IndexIDMap2 | None = None) -> None:
        self.dim = dim
        self._index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

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
        return cls(dim, index)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def ids(self) -> NDArray[np.int64]:
        return faiss.vector_to_array(self._index.id_map).astype(np.int64)

    def add(self, ids: NDArray[np.int64], vectors: NDArray[np.float32]) -> None:
        if len(ids) == 0:
            return
        vecs = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(ids), self.dim)
        self._index.add_with_ids(vecs, np.ascontiguousarray(ids, dtype=np.int64))

    def remove(self, ids: NDArray[np.int64]) -> int:
        if len(ids) == 0:
            return 0
        return int(
            self._index.remove_ids(faiss.IDSelectorBatch(np.ascontiguousarray(ids, np.int64)))
        )

    def search(
        self, queries: NDArray[np.float32], k: int, allowed_ids: NDArray[np.int64] | None = None
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Top-``k`` (similarities, ids) per query row; ids are -1 past the end. With
        ``allowed_ids`` only those ids are searched, so filtered searches are exact."""
        q = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        k = max(1, min(k, len(self))) if len(self) else 1
        if allowed_ids is None and len(q) == 1 and len(self):
            return self._scan_one(q[0], k)
        if allowed_ids is None:
            sims, ids = self._index.search(q, k)
        else:
            sel = faiss.IDSelectorBatch(np.ascontiguousarray(allowed_ids, dtype=np.int64))
            params = faiss.SearchParameters(sel=sel)  # type: ignore[call-arg]
            sims, ids = self._index.search(q, k, params=params)
        return sims.astype(np.float32), ids.astype(np.int64)

    def _scan_one(
        self, query: NDArray[np.float32], k: int
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Exact top-k for one query as one BLAS mat-vec over FAISS's own vector storage
        (a zero-copy view). FAISS scans a single query on one thread without BLAS; on 2
        cores this is about 2x faster for the same exact answer (see `prowl bench-search`)."""
        n = len(self)
        flat = faiss.downcast_index(self._index.index)
        xb = faiss.rev_swig_ptr(flat.get_xb(), n * self.dim).reshape(n, self.dim)  # type: ignore[attr-defined]
        scores = xb @ query
        top = np.argpartition(-scores, k - 1)[:k] if k < n else np.arange(n)
        top = top[np.argsort(-scores[top], kind="stable")]
        ids = self.ids()[top]
        return scores[top][None].astype(np.float32), ids[None].astype(np.int64)

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
        finally:
            tmp.unlink(missing_ok=True)
            tmp.with_name(tmp.name + ".sha256").unlink(missing_ok=True)


def _digest_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")
