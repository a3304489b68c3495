"""Hashes and sizes of files: what the gallery, the index, the evidence and the asset resolver
say about the bytes on disk. Standard library only, so any layer may use it."""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def source_size_bytes(path: Path) -> int:
    """Bytes of a video file, or of all files in an image folder (0 if unreadable)."""
    try:
        if path.is_dir():
            return sum(p.stat().st_size for p in path.iterdir() if p.is_file())
        return path.stat().st_size
    except OSError:
        return 0


def content_hash(path: Path, chunk_bytes: int = 4 << 20) -> str:
    """A fast identity for a source: sha256 over its size and its first, middle and last
    4 MiB (whole file when smaller). For a folder: over its absolute path.
    Two files that differ only outside those windows would collide; for camera footage
    (timestamps burnt into every frame, different lengths) that does not happen in practice."""
    path = Path(path)
    digest = hashlib.sha256()
    if path.is_dir():
        # A folder is identified by where it is: its images may be added to, or a broken one
        # removed, and it must stay the same source (ingest notices the change itself).
        digest.update(str(path.resolve()).encode())
        return "dir:" + digest.hexdigest()
    size = path.stat().st_size
    digest.update(str(size).encode())
    with open(path, "rb") as fh:
        if size <= 3 * chunk_bytes:
            digest.update(fh.read())
        else:
            for offset in (0, size // 2, size - chunk_bytes):
                fh.seek(offset)
                digest.update(fh.read(chunk_bytes))
    return digest.hexdigest()
