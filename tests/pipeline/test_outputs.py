"""What prowl writes for people and programs: CSV cells neutralised, unwritable paths named."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from pipeline.core.errors import ProwlError
from pipeline.core.outputs import make_dir, safe_cell, write_csv, write_text


@pytest.mark.parametrize(
    "cell,written",
    [
        ('=HYPERLINK("http://x","click")', '\'=HYPERLINK("http://x","click")'),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
        ("\tlead", "'\tlead"),
        ("lobby", "lobby"),
        ("-0.25", "-0.25"),  # a negative number stays a number
        (-0.25, -0.25),
        (None, None),
    ],
)
def test_formula_cells_are_neutralised(cell: object, written: object) -> None:
    assert safe_cell(cell) == written


def test_csv_round_trips_with_neutralised_camera(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "hits.csv",
        ["rank", "camera_id", "similarity"],
        [{"rank": 1, "camera_id": "=HYPERLINK(1)", "similarity": -0.5}],
    )
    rows = list(csv.DictReader(path.open()))
    assert rows == [{"rank": "1", "camera_id": "'=HYPERLINK(1)", "similarity": "-0.5"}]


def test_unwritable_paths_are_one_line_about_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    for target, needle in [
        (blocker / "hits.csv", "cannot write"),  # parent is a file
        (tmp_path, "is a folder"),
    ]:
        with pytest.raises(ProwlError) as err:
            write_text(target, "x")
        msg = str(err.value)
        assert needle in msg and str(target) in msg and "\n" not in msg
        assert "resume" not in msg and "free space" not in msg
    with pytest.raises(ProwlError, match="cannot create folder"):
        make_dir(blocker / "sub")
