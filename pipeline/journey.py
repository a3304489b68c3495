"""A subject's journey: the answers of a search in time order on the one time axis, with the
camera, enter and leave times and the gap since the step before. Footage with a known start
is placed by wall-clock time; footage without one cannot be placed against other videos and
comes after, by its own offsets (said on each such step)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

from pipeline.core.timeline import shown
from pipeline.query import QueryResult


@dataclass(frozen=True)
class Step:
    rank: int
    similarity: float
    camera_id: str
    video: str
    enter_s: float  # seconds from the video's start
    leave_s: float
    sightings: int
    detection_id: int  # the best sighting
    video_start: str | None  # ISO start of the video; None: not on the time axis
    gap_s: float | None = None  # from the previous step's leave to this enter (same axis)

    @property
    def enter_at(self) -> datetime | None:
        if not self.video_start:
            return None
        return datetime.fromisoformat(self.video_start) + timedelta(seconds=self.enter_s)

    @property
    def enter(self) -> str:
        return shown(self.video_start, self.enter_s)

    @property
    def leave(self) -> str:
        return shown(self.video_start, self.leave_s)

    def record(self) -> dict[str, object]:
        return {
            "rank": self.rank,
            "similarity": round(self.similarity, 5),
            "camera": self.camera_id,
            "video": self.video,
            "enter": self.enter,
            "leave": self.leave,
            "enter_s": round(self.enter_s, 3),
            "leave_s": round(self.leave_s, 3),
            "sightings": self.sightings,
            "detection_id": self.detection_id,
            "on_time_axis": self.video_start is not None,
            "gap_s": None if self.gap_s is None else round(self.gap_s, 3),
        }


def journey(result: QueryResult, best: int | None = None) -> list[Step]:
    """The answers (appearances, or single sightings for a per-detection search) in time
    order: dated ones by wall-clock time, then undated ones by video and offset; ``best``:
    only the answers ranked that high (gaps are between the steps kept)."""
    if result.tracks:
        steps = [
            Step(
                t.rank,
                t.similarity,
                t.camera_id,
                Path(t.video_path).name,
                t.first_s,
                t.last_s,
                t.sightings,
                t.best_detection_id,
                t.video_start,
            )
            for t in result.tracks
        ]
    else:
        steps = [
            Step(
                h.rank,
                h.similarity,
                h.camera_id,
                Path(h.video_path).name,
                h.timestamp_s,
                h.timestamp_s,
                1,
                h.detection_id,
                h.video_start,
            )
            for h in result.hits
        ]
    if best is not None:
        steps = [s for s in steps if s.rank <= best]
    dated = sorted((s for s in steps if s.video_start), key=lambda s: _naive(s.enter_at))
    undated = sorted((s for s in steps if not s.video_start), key=lambda s: (s.video, s.enter_s))
    out: list[Step] = []
    for group in (dated, undated):
        prev: Step | None = None
        for s in group:
            gap = None
            if prev is not None and (s.video_start or s.video == prev.video):
                gap = _axis(s, s.enter_s) - _axis(prev, prev.leave_s)
            out.append(_with_gap(s, gap))
            prev = s
    return out


def journey_lines(result: QueryResult, best: int = 10) -> list[str]:
    """The journey of the ``best`` answers (by rank) as lines for a terminal; the JSON and the
    report hold every answer's."""
    steps = journey(result, best)
    if not steps:
        return []
    every = len(result.tracks or result.hits)
    shown_n = f"the best {len(steps)} of {every}" if len(steps) < every else str(len(steps))
    lines = [f"journey ({shown_n} in time order; gap = time since the step before):"]
    for s in steps:
        gap = "" if s.gap_s is None else f"  gap {_duration(s.gap_s)}"
        when = s.enter if s.enter_s == s.leave_s else f"{s.enter} – {s.leave}"
        axis = "" if s.video_start else "  (no start time: offset in its video)"
        lines.append(
            f"  {when}  camera {s.camera_id} ({s.video})  {s.sightings} sighting"
            f"{'s' if s.sightings != 1 else ''}  rank {s.rank}{gap}{axis}"
        )
    return lines


def _axis(s: Step, offset_s: float) -> float:
    """A moment as seconds on a common scale: since the epoch for dated footage (as
    labelled), the offset itself for undated footage of one video."""
    if s.video_start:
        start = _naive(datetime.fromisoformat(s.video_start))
        return (start - datetime(1970, 1, 1)).total_seconds() + offset_s
    return offset_s


def _naive(t: datetime | None) -> datetime:
    assert t is not None
    return t.replace(tzinfo=None)


def _with_gap(s: Step, gap: float | None) -> Step:
    return replace(s, gap_s=gap)


def _duration(seconds: float) -> str:
    if seconds < 0:  # entered while the step before was still in view
        return f"overlaps {_duration(-seconds)}"
    if seconds < 60:
        return f"{seconds:.1f} s"
    m, sec = divmod(round(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def journey_html(steps: list[Step], link: str = "#hit{rank}") -> str:
    """One cross-camera timeline (a row per camera, one shared scale, each answer a bar from
    enter to leave, linked to its card) and the journey as a table. Footage without a start
    time gets its own rows on its own offsets, marked so."""
    import html

    if not steps:
        return ""
    parts = ["<h2>Timeline: every camera on one time axis</h2>"]
    dated = [s for s in steps if s.video_start]
    undated = [s for s in steps if not s.video_start]
    if dated:
        parts.append(_axis_svg(dated, link, "axis"))
    for video in sorted({s.video for s in undated}):
        group = [s for s in undated if s.video == video]
        parts.append(f"<p class='meta'>{html.escape(video)}: no start time; its own offsets</p>")
        parts.append(_axis_svg(group, link, "offsets"))
    parts.append(
        "<h2>Journey, in time order</h2><table class='journey'><tr><th>enter</th><th>leave</th>"
        "<th>camera</th><th>video</th><th>sightings</th><th>gap</th><th>rank</th></tr>"
    )
    for s in steps:
        gap = "" if s.gap_s is None else _duration(s.gap_s)
        href = link.format(rank=s.rank, detection=s.detection_id)
        parts.append(
            f"<tr><td>{s.enter}</td><td>{s.leave}</td><td>{html.escape(s.camera_id)}</td>"
            f"<td>{html.escape(s.video)}</td><td>{s.sightings}</td><td>{gap}</td>"
            f"<td><a href='{href}'>#{s.rank}</a></td></tr>"
        )
    parts.append("</table>")
    return "\n".join(parts)


def _axis_svg(steps: list[Step], link: str, kind: str) -> str:
    import html

    cams = sorted({s.camera_id for s in steps})
    t0 = min(_axis(s, s.enter_s) for s in steps)
    t1 = max(_axis(s, s.leave_s) for s in steps)
    span = max(t1 - t0, 1.0)
    left, width, row_h, gap = 140, 900, 14, 10
    rows = {cam: _packed([s for s in steps if s.camera_id == cam]) for cam in cams}
    height = sum(max(r for _s, r in rows[c]) * row_h + row_h + gap for c in cams) + 24
    svg = [
        f'<svg class="axis" data-kind="{kind}" viewBox="0 0 {left + width + 10} {height}" '
        f'width="100%" preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">'
    ]
    top = 4
    for cam in cams:
        lane_h = (max(r for _s, r in rows[cam]) + 1) * row_h
        svg.append(
            f'<text x="0" y="{top + 11}" font-size="12">{html.escape(cam)}</text>'
            f'<rect x="{left}" y="{top - 2}" width="{width}" height="{lane_h + 2}" fill="#f3f5f8"/>'
        )
        for s, row in rows[cam]:
            x = left + (_axis(s, s.enter_s) - t0) / span * width
            w = max(3.0, (s.leave_s - s.enter_s) / span * width)
            shade = int(60 + 160 * (1 - max(0.0, min(1.0, s.similarity))))
            href = link.format(rank=s.rank, detection=s.detection_id)
            svg.append(
                f'<a href="{href}"><rect class="bar" data-camera="{html.escape(cam)}" '
                f'data-rank="{s.rank}" x="{x:.1f}" y="{top + row * row_h}" width="{w:.1f}" '
                f'height="{row_h - 3}" fill="rgb({shade},{shade},230)"><title>#{s.rank} · '
                f"{s.similarity:.3f} · {html.escape(cam)} · {s.enter} – {s.leave} · "
                f"{s.sightings} sightings</title></rect></a>"
            )
        top += lane_h + gap
    first = min(steps, key=lambda s: _axis(s, s.enter_s))
    last = max(steps, key=lambda s: _axis(s, s.leave_s))
    svg.append(
        f'<text x="{left}" y="{height - 4}" font-size="11">{first.enter}</text>'
        f'<text x="{left + width}" y="{height - 4}" font-size="11" text-anchor="end">'
        f"{last.leave}</text></svg>"
    )
    return "".join(svg)


def _packed(steps: list[Step], most: int = 8) -> list[tuple[Step, int]]:
    """Each step with a sub-row of its camera's lane, so that overlapping ones stack."""
    ends: list[float] = []
    out = []
    for s in sorted(steps, key=lambda s: _axis(s, s.enter_s)):
        row = next((i for i, end in enumerate(ends) if end < _axis(s, s.enter_s)), None)
        if row is None:
            row = min(len(ends), most - 1)
            if row == len(ends):
                ends.append(0.0)
        ends[row] = max(ends[row], _axis(s, s.leave_s))
        out.append((s, row))
    return out
