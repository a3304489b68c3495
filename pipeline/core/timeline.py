"""Wall-clock time of footage: where a source's start time comes from (a file name, EXIF, an
MP4/MOV container, or the user) and how an offset in seconds becomes a time of day.

Times are kept as ISO 8601 text exactly as known: with a UTC offset when the source or the
user gave one, without when a camera labels its files in local time. Nothing is converted
between time zones; an analyst compares cameras in the time they were labelled with."""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

from pipeline.core.errors import ConfigError

# 2026-11-25T15:44:33.123, 20261125_154433, cam3-20261125-154433-250, 2026-11-25 15.44.33 ...
_STAMP = re.compile(
    r"(?<!\d)(?P<y>(?:19|20)\d\d)[-_.]?(?P<mo>[01]\d)[-_.]?(?P<d>[0-3]\d)"
    r"[T_\- ]?(?P<h>[0-2]\d)[-_.:h]?(?P<mi>[0-5]\d)[-_.:m]?(?P<s>[0-5]\d)"
    r"(?:[.,_-](?P<frac>\d{1,6}))?(?!\d)"
)
_MP4_EPOCH = datetime(1904, 1, 1)


def stamp_in_name(name: str) -> datetime | None:
    """The date and time written in a file name, if there is one (naive: as labelled)."""
    m = _STAMP.search(Path(name).stem)
    if not m:
        return None
    frac = m["frac"] or "0"
    try:
        return datetime(
            int(m["y"]),
            int(m["mo"]),
            int(m["d"]),
            int(m["h"]),
            int(m["mi"]),
            int(m["s"]),
            int(frac.ljust(6, "0")[:6]),
        )
    except ValueError:  # 2026-13-45 and the like: digits, not a time
        return None


def exif_time(path: Path) -> datetime | None:
    """EXIF DateTimeOriginal (+ SubsecTimeOriginal) of an image, if it has one."""
    try:
        from PIL import Image

        with Image.open(path) as img:
            exif = img.getexif().get_ifd(0x8769)  # the Exif sub-IFD
        text = exif.get(36867)  # DateTimeOriginal, "YYYY:MM:DD HH:MM:SS"
        if not text:
            return None
        when = datetime.strptime(str(text).strip(), "%Y:%m:%d %H:%M:%S")
        sub = str(exif.get(37521) or "").strip()  # SubsecTimeOriginal, digits
        if sub.isdigit():
            when += timedelta(microseconds=int(sub.ljust(6, "0")[:6]))
        return when
    except Exception:  # no PIL, not an image PIL reads, no or odd EXIF: no time
        return None


def mp4_creation_time(path: Path) -> datetime | None:
    """The creation time an MP4/MOV container records (moov/mvhd, UTC), if it is set."""
    try:
        with open(path, "rb") as fh:
            size = Path(path).stat().st_size
            pos = 0
            while pos + 8 <= size:
                fh.seek(pos)
                box_size, kind = struct.unpack(">I4s", fh.read(8))
                header = 8
                if box_size == 1:
                    box_size = struct.unpack(">Q", fh.read(8))[0]
                    header = 16
                elif box_size == 0:
                    box_size = size - pos
                if box_size < header:
                    return None
                if kind == b"moov":
                    return _mvhd_time(fh, pos + header, pos + box_size)
                pos += box_size
    except (OSError, struct.error):
        return None
    return None


def _mvhd_time(fh: object, start: int, end: int) -> datetime | None:
    pos = start
    read = fh.read  # type: ignore[attr-defined]
    seek = fh.seek  # type: ignore[attr-defined]
    while pos + 8 <= end:
        seek(pos)
        box_size, kind = struct.unpack(">I4s", read(8))
        if box_size < 8:
            return None
        if kind == b"mvhd":
            version = read(4)[0]
            raw = read(8 if version == 1 else 4)
            seconds = int.from_bytes(raw, "big")
            if seconds == 0:  # not set, as many encoders leave it
                return None
            return _MP4_EPOCH + timedelta(seconds=seconds)
        pos += box_size
    return None


def parse_start_time(text: str) -> str:
    """A user's ``--start-time``: ISO 8601, normalised; a ConfigError says what is expected."""
    try:
        return datetime.fromisoformat(text.strip()).isoformat()
    except ValueError:
        raise ConfigError(
            f"start time '{text}' is not ISO 8601; use e.g. 2026-11-25T15:44:33 or "
            "2026-11-25T15:44:33+01:00"
        ) from None


def wall_time(start_iso: str | None, offset_s: float) -> str | None:
    """The time of day ``offset_s`` seconds after a source's start, ISO 8601 to the
    millisecond (with the start's UTC offset if it has one); None when the start is unknown."""
    if not start_iso:
        return None
    when = datetime.fromisoformat(start_iso) + timedelta(seconds=offset_s)
    return when.isoformat(timespec="milliseconds")


def shown(start_iso: str | None, offset_s: float) -> str:
    """What a table shows for a moment: the time of day when known, else the offset."""
    text = wall_time(start_iso, offset_s)
    if text is None:
        return offset_clock(offset_s)
    return text.replace("T", " ")


def offset_clock(seconds: float) -> str:
    """hh:mm:ss.mmm from the start of a source."""
    ms = round(seconds * 1000)
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


@dataclass(frozen=True)
class When:
    """A moment as a person types it for ``--from``/``--to``: exactly one of seconds from each
    video's own start (``offset_s``), a date-time (``at``) or a time of day (``clock``, placed
    on the one day the gallery's dated footage covers: ``on_day``)."""

    offset_s: float | None = None
    at: datetime | None = None
    clock: time | None = None

    def on_day(self, days: set[date]) -> datetime | None:
        """This moment on the gallery's time axis (None for an offset). A time of day needs
        footage of exactly one day; otherwise a ConfigError asks for a date."""
        if self.at is not None:
            return self.at
        if self.clock is None:
            return None
        if len(days) != 1:
            said = "no video with a known start time" if not days else f"{len(days)} days"
            raise ConfigError(
                f"{self.clock.isoformat()} is a time of day, but the gallery's footage spans "
                f"{said}; give a date-time (2026-11-25T{self.clock.isoformat()}) or seconds "
                "from each video's start (+SECONDS)"
            )
        return datetime.combine(next(iter(days)), self.clock)


_CLOCK = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}(?:\.\d+)?))?")


def _seconds(text: str) -> float | None:
    """'90', '12.5', '1:30', '1:02:03.5' as seconds; None if it is none of those."""
    parts = text.split(":")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        return None
    if len(values) > 3 or any(v < 0 for v in values):
        return None
    out = 0.0
    for v in values:
        out = out * 60 + v
    return out


def parse_when(text: str) -> When:
    """``--from``/``--to`` text: a date-time (``2026-11-25T15:45:20``, ``2026-11-25 15:45``),
    a time of day (``15:45:20``, ``15:45``) or seconds from each video's own start (``90``,
    ``+90``, ``+1:30``). A ConfigError names the three forms."""
    t = text.strip()
    if t.startswith("+") and (sec := _seconds(t[1:])) is not None:
        return When(offset_s=sec)
    if re.fullmatch(r"\d+(?:\.\d*)?", t):
        return When(offset_s=float(t))
    m = _CLOCK.fullmatch(t)
    if m and int(m[1]) < 24 and int(m[2]) < 60 and float(m[3] or 0) < 60:
        sec = float(m[3] or 0)
        return When(clock=time(int(m[1]), int(m[2]), int(sec), round((sec % 1) * 1e6)))
    try:
        return When(at=datetime.fromisoformat(t.replace(" ", "T", 1)))
    except ValueError:
        raise ConfigError(
            f"'{text}' is not a time; use a date-time (2026-11-25T15:45:20), a time of day "
            "(15:45:20) or seconds from each video's start (90 or +1:30)"
        ) from None


def as_labelled(moment: datetime, start: datetime) -> float:
    """Seconds from ``start`` to ``moment``. Both with a UTC offset: the true difference;
    otherwise they are compared as labelled (the offset, if any, is set aside)."""
    if (moment.tzinfo is None) != (start.tzinfo is None):
        moment, start = moment.replace(tzinfo=None), start.replace(tzinfo=None)
    return (moment - start).total_seconds()
