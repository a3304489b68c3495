"""The gate in front of every request of `prowl serve` (a plain ASGI middleware, so it sees the
request before any routing, body parsing or upload spooling happens).

What it defends against, in order:
- DNS rebinding: a ``Host`` that is not one of the names the server was started under is
  refused (421) before routing; a page on another domain that re-resolves to 127.0.0.1 gets
  nothing.
- Other sites: a request that another site's page made (``Sec-Fetch-Site`` cross-site or
  same-site, an ``Origin`` or ``Referer`` of another scheme, host or port) is refused (403),
  for reads as for writes, except a plain navigation to a page (a link to the search page).
- Missing token (when one is set): ``Authorization: Bearer`` (any case), the ``prowl_token``
  cookie, or ``?token=`` once (answered by a redirect that sets the cookie and drops the
  token from the address bar).
- Large bodies: ``Content-Length`` over the limit is refused before anything is read, and a
  body without one (chunked) is counted while it streams; nothing past the limit is spooled.
- Every response carries a Content-Security-Policy (the pages need no inline script or
  style), nosniff, no framing, no referrer, and same-origin resource policy.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.exceptions import HTTPException

PAGES = ("/", "/gallery")  # reachable by a link from elsewhere (nothing else is)
OPEN_PATHS = ("/healthz", "/favicon.ico")  # no token, no work
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
CSP = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
    "script-src 'self'; style-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


class BodyTooLarge(HTTPException):
    """Raised from the body stream; FastAPI passes HTTPExceptions through its form parsing, so
    the route answers 413 instead of spooling the rest."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is over {_size(limit)}")


def _size(n: int) -> str:
    return f"{n / (1 << 30):g} GB" if n >= 1 << 30 else f"{n / (1 << 20):g} MB"


def host_name(host_header: str) -> str:
    """'127.0.0.1:8000' -> '127.0.0.1', '[::1]:8000' -> '::1', 'Name.Example' -> 'name.example'."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def allowed_hosts_for(bind: str, extra: Iterable[str] = ()) -> set[str] | None:
    """The Host names a server bound to ``bind`` answers to: the address itself (and the
    loopback names for a loopback bind) plus ``extra`` (``--allowed-host``). A wildcard bind
    (0.0.0.0, ::) with no ``extra`` answers any name (its token protects it): None."""
    extra = {host_name(h) for h in extra if h.strip()}
    if bind in ("0.0.0.0", "::", "") and not extra:
        return None
    names = {host_name(bind), *extra}
    if names & set(LOOPBACK_NAMES) or bind.startswith("127."):
        names |= set(LOOPBACK_NAMES)
    return names


class Guard:
    def __init__(
        self,
        app: Any,
        token: str | None,
        allowed_hosts: set[str] | None,
        max_body_bytes: int,
        upload_limits: dict[str, int],
    ) -> None:
        self.app, self.token, self.allowed_hosts = app, token, allowed_hosts
        self.max_body_bytes, self.upload_limits = max_body_bytes, upload_limits

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        path: str = scope["path"]
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        refusal = self.refusal(scope, headers, path, query.get("token", ""))
        if refusal is not None:
            await _json(send, *refusal)
            return
        if self.token is not None and "token" in query and path in PAGES:
            # the cookie is set; the token leaves the address bar (and the history)
            rest = urlencode({k: v for k, v in query.items() if k != "token"})
            cookie = SimpleCookie()
            cookie["prowl_token"] = self.token
            cookie["prowl_token"].update({"httponly": "1", "samesite": "Strict", "path": "/"})
            extra = [
                (b"location", (path + (f"?{rest}" if rest else "")).encode("latin-1")),
                (b"set-cookie", cookie["prowl_token"].OutputString().encode("latin-1")),
            ]
            await _json(send, 303, "signed in; continue without the token in the address", extra)
            return
        limit = self.upload_limits.get(path, self.max_body_bytes)
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await _json(send, 413, f"the request body is over {_size(limit)}")
            return
        received = 0

        async def counted() -> Any:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        started = False

        async def secured(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", []), *HEADERS]
            await send(message)

        try:
            await self.app(scope, counted, secured)
        except BodyTooLarge as exc:  # raised where no route caught it
            if not started:
                await _json(send, 413, str(exc.detail))

    def refusal(
        self, scope: Any, headers: dict[str, str], path: str, query_token: str
    ) -> tuple[int, str] | None:
        host = headers.get("host", "")
        if self.allowed_hosts is not None and host_name(host) not in self.allowed_hosts:
            return 421, (
                f"this server does not answer to the host name {host_name(host)!r}; "
                "start it with --allowed-host NAME to serve under that name"
            )
        own = f"{scope.get('scheme', 'http')}://{host.lower()}"
        navigation = (
            scope["method"] == "GET"
            and path in PAGES
            and headers.get("sec-fetch-mode", "navigate") == "navigate"
        )
        if not navigation:
            site = headers.get("sec-fetch-site")
            origin = headers.get("origin")
            referer = headers.get("referer")
            if site in ("cross-site", "same-site"):
                return 403, "cross-site request refused"
            if origin is not None and origin.lower() != own:
                return 403, "cross-site request refused (Origin)"
            if referer is not None and _origin_of(referer) != own:
                return 403, "cross-site request refused (Referer)"
        if (
            self.token is not None
            and path not in OPEN_PATHS
            and not self.authorised(headers, query_token)
        ):
            return 401, "an access token is required (printed when the server started)"
        return None

    def authorised(self, headers: dict[str, str], query_token: str) -> bool:
        assert self.token is not None
        given = query_token
        scheme, _, value = headers.get("authorization", "").strip().partition(" ")
        if not given and scheme.lower() == "bearer":
            given = value.strip()
        if not given:
            cookie = SimpleCookie()
            try:
                cookie.load(headers.get("cookie", ""))
            except Exception:  # a malformed cookie header is no token
                cookie = SimpleCookie()
            given = cookie["prowl_token"].value if "prowl_token" in cookie else ""
        return hmac.compare_digest(given.encode(), self.token.encode())


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


async def _json(
    send: Any, status: int, message: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *HEADERS,
                *(extra or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
