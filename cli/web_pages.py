"""The pages of `prowl serve`: static HTML, CSS and JavaScript under cli/static (no build
step). Every piece of gallery text reaches a page through ``textContent`` or attributes set
from script, never through HTML strings; the camera list rendered on the server is escaped."""

from __future__ import annotations

from importlib import resources

STATIC = resources.files("cli") / "static"
STATIC_TYPES = {".css": "text/css", ".js": "text/javascript"}


def page(name: str) -> str:
    return (STATIC / f"{name}.html").read_text(encoding="utf-8")


def static_file(name: str) -> tuple[bytes, str] | None:
    """(content, media type) of a stylesheet or script under cli/static; None for any other
    name (the name is matched against the folder's own listing, never opened as a path)."""
    for item in STATIC.iterdir():
        if item.name == name and "." + name.rsplit(".", 1)[-1] in STATIC_TYPES:
            return item.read_bytes(), STATIC_TYPES["." + name.rsplit(".", 1)[-1]]
    return None
