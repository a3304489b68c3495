"""Secrets out of addresses before they are shown, logged or stored.

A camera or database address can carry a secret in three places: the password of its user
information (``rtsp://admin:pw@cam``, also with a raw ``@`` or ``:`` inside the password, or
with no user at all: ``rtsp://:pw@cam``), and the query string (``...feed.mjpg?user=admin&
password=pw``, ``?token=...``). ``redact_url`` hides all three; what a program needs to
reconnect is kept in memory only, never written anywhere."""

from __future__ import annotations

import re

MASK = "***"
# query parameters whose value is a secret (matched anywhere in the name, case-insensitive)
SECRET_PARAMS = re.compile(
    r"pass|pwd|secret|token|key|auth|sig|cred|session|sid$|jwt|otp|code", re.IGNORECASE
)


def redact_url(url: str) -> str:
    """``url`` with the password of its user information and the values of secret-looking
    query parameters replaced by ``***``. Anything that is not ``scheme://...`` comes back
    unchanged (a file path has no secrets of this kind)."""
    if "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    # The authority ends at the first '/', '?' or '#' after the LAST '@' (a raw '@' may stand
    # in a password, never in a host name).
    at = _last_at_before_path(rest)
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1 :]
        user = userinfo.split(":", 1)[0]
        rest = f"{user}:{MASK}@{rest}" if ":" in userinfo or not user else f"{user}@{rest}"
    if "?" in rest:
        head, query = rest.split("?", 1)
        fragment = ""
        if "#" in query:
            query, fragment = query.split("#", 1)
            fragment = "#" + fragment
        parts = []
        for part in query.split("&"):
            name, eq, _value = part.partition("=")
            parts.append(f"{name}={MASK}" if eq and SECRET_PARAMS.search(name) else part)
        rest = f"{head}?{'&'.join(parts)}{fragment}"
    return f"{scheme}://{rest}"


def _last_at_before_path(rest: str) -> int:
    """Index of the '@' that ends the user information, or -1 when there is none."""
    at = rest.rfind("@")
    if at < 0:
        return -1
    # an '@' after the first '/', '?' or '#' belongs to the path or query, not to the user
    # information (which holds those characters only percent-encoded)
    ends = [i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0]
    first_path = min(ends, default=-1)
    while at >= 0 and 0 <= first_path < at:
        at = rest.rfind("@", 0, at)
    return at


def redact_text(text: str) -> str:
    """``text`` (a command line, a message) with every ``scheme://...`` word redacted."""
    return " ".join(redact_url(word) if "://" in word else word for word in text.split(" "))
