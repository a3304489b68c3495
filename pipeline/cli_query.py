"""Query subcommands (filled in by the query work)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def add_query_parsers(sub: Any, common: Callable[[Any], None]) -> None:
    return None
