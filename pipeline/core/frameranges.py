"""Half-open ranges of frame indices: what a run has done, and what a window still needs."""

from __future__ import annotations

import json

Ranges = list[tuple[int, int]]


def merge_ranges(ranges: Ranges) -> Ranges:
    """Sorted, non-overlapping, non-touching half-open ranges covering the same frames."""
    out: Ranges = []
    for a, b in sorted(r for r in ranges if r[1] > r[0]):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def missing_ranges(want: tuple[int, int], done: Ranges) -> Ranges:
    """The parts of ``want`` not covered by ``done``."""
    gaps, cursor = [], want[0]
    for a, b in merge_ranges(done):
        if b <= cursor or a >= want[1]:
            continue
        if a > cursor:
            gaps.append((cursor, min(a, want[1])))
        cursor = max(cursor, b)
    if cursor < want[1]:
        gaps.append((cursor, want[1]))
    return gaps


def kept_frames(a: int, b: int, stride: int) -> int:
    """How many frames of [a, b) a stride keeps (those with index % stride == 0)."""
    return max(0, (b - 1) // stride - (a - 1) // stride) if b > a else 0


def load_ranges(text: str | None) -> Ranges:
    """Ranges as a run stores them (JSON ``[[first, stop), ...]``, or nothing yet)."""
    return [(int(a), int(b)) for a, b in json.loads(text)] if text else []
