"""Files prowl writes for people and other programs (CSV, JSON, HTML, MOT text): one way to
write them safely. An unwritable path is a one-line error about that path, not about the
gallery; CSV cells that a spreadsheet would run as a formula are neutralised."""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pipeline.core.errors import ProwlError

# OWASP's list: a cell starting with one of these is a formula in Excel/LibreOffice/Sheets.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """``value`` unchanged, unless it is text a spreadsheet would evaluate: then prefixed
    with a quote (``=HYPERLINK(...)`` -> ``'=HYPERLINK(...)``). Numbers, including negative
    ones written as text, stay numbers."""
    if not isinstance(value, str) or not value.startswith(_FORMULA_START):
        return value
    try:
        float(value)
        return value
    except ValueError:
        return "'" + value


def write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path``; an unwritable path is a ProwlError naming it."""
    path = Path(path)
    if path.is_dir():
        raise ProwlError(f"{path} is a folder; give a file name to write")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ProwlError(
            f"cannot write {path}: {exc.strerror or exc}; choose a writable path"
        ) from None
    return path


def check_writable(path: Path) -> None:
    """Before long work: a file can be written at ``path`` later (nothing is created now)."""
    path = Path(path)
    if path.is_dir():
        raise ProwlError(f"{path} is a folder; give a file name to write")
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ProwlError(f"cannot write {path}: {ancestor} is not a folder; choose a writable path")
    try:
        with tempfile.TemporaryFile(dir=ancestor):
            pass
    except OSError as exc:
        raise ProwlError(
            f"cannot write {path}: {exc.strerror or exc}; choose a writable path"
        ) from None


def make_dir(path: Path) -> Path:
    """Create an output folder; an unusable path is a ProwlError naming it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ProwlError(
            f"cannot create folder {path}: {exc.strerror or exc}; choose a writable path"
        ) from None
    return path


def csv_text(fields: Sequence[str], records: Iterable[Mapping[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(fields), extrasaction="ignore")
    writer.writeheader()
    for rec in records:
        writer.writerow({k: safe_cell(rec.get(k)) for k in fields})
    return buf.getvalue()


def write_csv(path: Path, fields: Sequence[str], records: Iterable[Mapping[str, Any]]) -> Path:
    return write_text(path, csv_text(fields, records))
