"""A query's self-contained HTML page: hit cards, each hit's frame with its box, timelines and
track sections; images inlined as data URIs, so it opens offline from a file, no scripts."""

from __future__ import annotations

import base64
import html
import logging
from collections import defaultdict
from pathlib import Path
from typing import Any

import cv2

from pipeline.core import outputs
from pipeline.core.crops import encode_jpeg
from pipeline.core.timeline import shown
from pipeline.journey import journey, journey_html
from pipeline.query import QueryResult
from storage.gallery import Hit
from storage.tracks import TrackHit

log = logging.getLogger(__name__)


FRAME_WIDTH_PX = 640  # full frames are embedded at this width


def _data_uri(jpeg: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def frames_with_boxes(hits: list[Hit]) -> dict[int, bytes]:
    """JPEG of each hit's full frame with its box drawn, decoding each video once in frame
    order. Hits whose video is gone get no frame (the page says so)."""
    from pipeline.core.video import read_frames

    out: dict[int, bytes] = {}
    by_video: dict[str, list[Hit]] = defaultdict(list)
    for h in hits:
        by_video[h.video_path].append(h)
    for path, group in by_video.items():
        wanted: dict[int, list[Hit]] = defaultdict(list)
        for h in group:
            wanted[h.frame_index].append(h)
        if not Path(path).exists():
            log.warning("%s is gone; the report shows thumbnails only for its hits", path)
            continue
        try:
            for index in sorted(wanted):
                frame = next(iter(read_frames(Path(path), first_index=index)), None)
                if frame is None or frame.index != index:
                    continue
                for h in wanted[index]:
                    img = frame.image.copy()
                    x1, y1, x2, y2 = (round(v) for v in h.xyxy)
                    thick = max(2, img.shape[1] // 300)
                    cv2.rectangle(img, (x1, y1), (x2, y2), (0, 0, 255), thick)
                    scale = FRAME_WIDTH_PX / img.shape[1]
                    small = cv2.resize(
                        img,
                        (FRAME_WIDTH_PX, round(img.shape[0] * scale)),
                        interpolation=cv2.INTER_AREA,
                    )
                    out[h.detection_id] = encode_jpeg(small, small.shape[0], quality=80)
        except Exception as exc:
            log.warning("%s: could not re-read frames for the report: %s", path, exc)
    return out


_CSS = """
body{font:14px system-ui,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{font-size:20px}h2{font-size:16px;margin-top:28px;border-bottom:1px solid #ccc}
.query img{height:160px;margin-right:8px;border:3px solid #2a7}
.grid{display:flex;flex-wrap:wrap;gap:10px}
.hit{background:#fff;border:1px solid #ddd;padding:6px;width:132px;text-align:center}
.hit img{height:160px;max-width:128px;object-fit:contain}
.hit .meta{font-size:12px;line-height:1.35}
.sim{font-weight:600}
table{border-collapse:collapse}td,th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:left}
.timeline td img{height:64px}
.lightbox{display:none;position:fixed;inset:0;background:rgba(0,0,0,.85);z-index:9;
 align-items:center;justify-content:center}
.lightbox:target{display:flex}.lightbox img{max-width:95vw;max-height:90vh}
.lightbox .cap{color:#fff;position:absolute;bottom:12px;width:100%;text-align:center}
.timeline .frame img{width:320px;height:auto}
svg.axis{max-width:1100px;display:block;margin:8px 0}
.meta{color:#555}
"""


def _hit_card(h: Hit, has_frame: bool) -> str:
    thumb = f'<img alt="hit {h.rank}" src="{_data_uri(h.thumbnail)}">'
    link = f'<a href="#f{h.detection_id}">{thumb}</a>' if has_frame else thumb
    return (
        f'<div class="hit" id="hit{h.rank}">{link}<div class="meta">'
        f'<span class="sim">#{h.rank} · {h.similarity:.3f}</span><br>'
        f"camera {html.escape(h.camera_id)}<br>{shown(h.video_start, h.timestamp_s)}<br>"
        f"frame {h.frame_index}</div></div>"
    )


def render_html(
    result: QueryResult,
    title: str = "prowl query",
    frames: dict[int, bytes] | None = None,
    case: dict[str, Any] | None = None,
) -> str:
    """``frames``: full frames with boxes by detection id, when the caller already has them;
    ``case``: the case, analyst, subject and notes shown at the top."""
    hits = result.hits
    frames = frames_with_boxes(hits) if frames is None else frames
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>",
    ]
    if case:
        rows = "".join(
            f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
            for k, v in case.items()
            if v not in (None, "")
        )
        parts.append(f'<div class="case"><h2>Case</h2><table>{rows}</table></div>')
    parts.append('<div class="query"><h2>Query</h2>')
    for crop in result.crops:
        parts.append(f'<img alt="query" src="{_data_uri(encode_jpeg(crop, 160))}">')
    timing = ", ".join(
        f"{k.removesuffix('_s')} {v * 1000:.0f} ms" for k, v in result.timings_s.items()
    )
    parts.append(
        f"<p>{len(hits)} hits · embedder {html.escape(result.embedder)}"
        f"{' · k-reciprocal re-ranked' if result.reranked else ''} · {timing}</p></div>"
    )

    if result.tracks:
        parts.extend(_track_sections(result.tracks, frames))
        parts.append(journey_html(journey(result)))
        parts.extend(_lightboxes(hits, frames))
        parts.append("</body></html>")
        return "\n".join(parts)
    parts.append('<h2>By rank</h2><div class="grid">')
    parts.extend(_hit_card(h, h.detection_id in frames) for h in hits)
    parts.append("</div>")

    parts.append(journey_html(journey(result)))
    parts.append("<h2>By video, in time order</h2>")
    by_video: dict[tuple[str, str], list[Hit]] = defaultdict(list)
    for h in hits:
        by_video[(h.camera_id, h.video_path)].append(h)
    for (camera, path), group in sorted(by_video.items()):
        group.sort(key=lambda h: h.timestamp_s)
        span = (
            f"{shown(group[0].video_start, group[0].timestamp_s)} – "
            f"{shown(group[-1].video_start, group[-1].timestamp_s)}"
        )
        parts.append(
            f"<h3>camera {html.escape(camera)} · {html.escape(Path(path).name)} · "
            f"{len(group)} sightings · {span}</h3>"
        )
        parts.append(
            '<table class="timeline"><tr><th>time</th><th>rank</th><th>similarity</th>'
            "<th>crop</th><th>frame</th></tr>"
        )
        for h in group:
            frame = (
                f'<a href="#f{h.detection_id}" class="frame"><img alt="frame {h.frame_index}" '
                f'src="{_data_uri(frames[h.detection_id])}"></a>'
                if h.detection_id in frames
                else "<em>video not available</em>"
            )
            parts.append(
                f"<tr><td>{shown(h.video_start, h.timestamp_s)}</td><td>{h.rank}</td>"
                f"<td>{h.similarity:.3f}</td><td><img alt='crop' src='{_data_uri(h.thumbnail)}'>"
                f"</td><td>{frame}</td></tr>"
            )
        parts.append("</table>")

    parts.extend(_lightboxes(hits, frames))
    parts.append("</body></html>")
    return "\n".join(parts)


def _lightboxes(hits: list[Hit], frames: dict[int, bytes]) -> list[str]:
    parts = []
    for h in hits:  # click-to-enlarge overlays, pure CSS (:target)
        if h.detection_id in frames:
            parts.append(
                f'<div class="lightbox" id="f{h.detection_id}"><a href="#hit{h.rank}">'
                f'<img alt="frame" src="{_data_uri(frames[h.detection_id])}"></a>'
                f'<div class="cap">#{h.rank} · camera {html.escape(h.camera_id)} · '
                f"{shown(h.video_start, h.timestamp_s)} · frame {h.frame_index} · click to close"
                "</div></div>"
            )
    return parts


def _track_sections(tracks: list[TrackHit], frames: dict[int, bytes]) -> list[str]:
    parts = ['<h2>Tracks by rank</h2><div class="grid">']
    for t in tracks:
        thumb = f'<img alt="track {t.rank}" src="{_data_uri(t.thumbnail)}">'
        link = (
            f'<a href="#f{t.best_detection_id}">{thumb}</a>'
            if t.best_detection_id in frames
            else thumb
        )
        parts.append(
            f'<div class="hit" id="hit{t.rank}">{link}<div class="meta">'
            f'<span class="sim">#{t.rank} · {t.similarity:.3f}</span><br>'
            f"camera {html.escape(t.camera_id)}<br>{shown(t.video_start, t.first_s)}<br>"
            f"– {shown(t.video_start, t.last_s)}<br>"
            f"{t.sightings} sightings</div></div>"
        )
    parts.append("</div>")
    return parts


def write_html(result: QueryResult, target: Path, title: str = "prowl query") -> Path:
    return outputs.write_text(Path(target), render_html(result, title))
