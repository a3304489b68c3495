"""Errors a user can cause. Each message names the problem and the fix on one line.

The CLI turns any ``ProwlError`` into that line on stderr and exit code 2.
"""

from __future__ import annotations


class ProwlError(Exception):
    """Base class for errors caused by input or setup, not by a bug."""


class ConfigError(ProwlError):
    pass


class AssetError(ProwlError):
    pass


class SourceError(ProwlError):
    """A video file or image folder that cannot be read."""


class GalleryError(ProwlError):
    """A gallery that is missing, empty, unreachable or built with another embedder."""


class QueryError(ProwlError):
    """A query image, box or filter that cannot be used."""


class DatasetError(ProwlError):
    """A malformed evaluation dataset."""


def one_line(exc: BaseException, last: bool = False, limit: int = 500) -> str:
    """An exception as one line for a user or a stored run status: its message's first line
    (``last``: its last, where the message is a remote traceback and the cause comes at the
    end, as a Ray task error's does), or its type when it has no message; at most ``limit``
    characters."""
    lines = str(exc).strip().splitlines()
    return (lines[-1 if last else 0] if lines else type(exc).__name__)[:limit]
