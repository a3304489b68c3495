"""`prowl serve`: the search page and JSON API over one gallery, in one long-lived process."""

from __future__ import annotations

import argparse
import ipaddress
import secrets
import socket
from pathlib import Path
from typing import Any

from cli.common import load_cfg, open_gallery
from pipeline.core.errors import ProwlError
from storage.database import safe_url


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("serve", help="the search page and JSON API over a gallery")
    p.add_argument("--data-dir", type=Path)
    p.add_argument("--db", help="SQLAlchemy URL of the gallery (default: DATA_DIR's SQLite)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default: loopback only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--token",
        help="access token required on every request (generated for a non-loopback --host)",
    )
    p.add_argument(
        "--ingest-root",
        type=Path,
        action="append",
        default=[],
        help="a folder whose videos may be ingested from the gallery page (repeatable; "
        "without it only uploads can be ingested)",
    )
    p.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a further Host name to answer to (repeatable), e.g. a reverse proxy's public "
        "name; any other Host header is refused (DNS rebinding)",
    )
    p.add_argument("--config", type=Path)
    p.set_defaults(func=cmd_serve)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, port: int) -> None:
    """Say in one line, before serving, that the address cannot be bound."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ProwlError(f"--host {host}: cannot resolve it ({exc.strerror})") from None
    family, kind, proto, _name, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise ProwlError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}; "
                "choose another --port or stop what uses it"
            ) from None


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from cli.web import create_app
    from cli.web_guard import allowed_hosts_for

    if not 0 < args.port < 65536:
        raise ProwlError(f"--port {args.port} is not a TCP port (1..65535)")
    token = args.token
    if token is not None and (len(token) < 16 or any(c.isspace() for c in token)):
        raise ProwlError("--token must be at least 16 characters with no spaces")
    if not is_loopback(args.host) and token is None:
        token = secrets.token_urlsafe(24)
    for root in args.ingest_root:
        if not root.is_dir():
            raise ProwlError(f"--ingest-root {root} is not a folder")
    cfg = load_cfg(args)
    check_bind(args.host, args.port)
    hosts = allowed_hosts_for(args.host, args.allowed_host)
    with open_gallery(cfg, must_exist=True) as gallery:
        app = create_app(
            gallery, token, cfg, [r.resolve() for r in args.ingest_root], allowed_hosts=hosts
        )
        if token is not None and args.token is None:
            print(f"access token (needed by every client; shown once): {token}", flush=True)
        shown = f"[{args.host}]" if ":" in args.host else args.host
        url = f"http://{shown}:{args.port}/"
        print(f"serving {safe_url(cfg.db_url)} on {url}" + ("?token=…" if token else ""))
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
