"""Inference backends: a torch module exported once to ONNX and run by OpenVINO or ONNX Runtime.

The export is cached under ``<asset cache>/exports/`` in a folder named by a digest of what
decides its content: the module's weights (sha256 of every tensor), its input shape, the backend,
the precision and the versions of torch and of the runtime. It is written to a temporary folder
and renamed into place (a crash never leaves half an export under the name), carries a manifest
with the sha256 of each file, and is checked against it on every load: a damaged export is moved
aside and made again. The torch path stays for GPUs and for models a backend cannot take.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pipeline.core.assets import cache_dir
from pipeline.core.errors import AssetError
from pipeline.core.files import sha256_of

log = logging.getLogger(__name__)

BACKENDS = ("auto", "openvino", "onnxruntime", "torch")
PRECISIONS = ("fp32", "int8")
EXPORT_FORMAT = 1  # bump when the export recipe changes: old cache entries are then not used


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def resolve_backend(backend: str, device: str) -> str:
    """``auto``: CUDA/MPS PyTorch on a GPU, OpenVINO on a CPU (ONNX Runtime where OpenVINO is
    not installed, torch where neither is). A named backend is checked to be installed."""
    if backend == "auto":
        if device != "cpu":
            return "torch"
        for name in ("openvino", "onnxruntime"):
            if _importable(name):
                return name
        return "torch"
    if backend in ("openvino", "onnxruntime"):
        if device != "cpu":
            raise AssetError(
                f"backend '{backend}' runs on the CPU here; use backend torch (or auto) "
                f"for device '{device}'"
            )
        if not _importable(backend):
            raise AssetError(f"backend '{backend}' is not installed; pip install {backend}")
    return backend


def runtime_version(backend: str) -> str:
    """Versions of the exporter and the runtime, from package metadata (importing torch just
    to read its version would cost a second at every start)."""
    from importlib.metadata import version

    return f"torch {version('torch')}; {backend} {version(backend)}"


def remembered(kind: str, file_sha: str) -> dict[str, Any] | None:
    """Facts remembered from loading a model file before (``kind``: what was loaded), or
    None. They let a process skip loading the file when its export is cached."""
    try:
        facts = json.loads((cache_dir() / "exports" / f"{kind}-{file_sha[:24]}.json").read_text())
    except (OSError, ValueError):
        return None
    return facts if isinstance(facts, dict) else None


def remember(kind: str, file_sha: str, facts: dict[str, Any]) -> None:
    """Keep ``facts`` for the next process (atomic; a failure only costs start-up time)."""
    path = cache_dir() / "exports" / f"{kind}-{file_sha[:24]}.json"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(facts))
        os.replace(tmp, path)
    except OSError:
        pass


def weights_digest(module: Any) -> str:
    """sha256 over a torch module's class and every tensor of its state dict (names, shapes,
    bytes): the identity of what the export will compute."""
    import torch

    digest = hashlib.sha256(type(module).__qualname__.encode())
    for name, tensor in module.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        digest.update((t.float() if t.dtype == torch.bfloat16 else t).numpy().tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class ExportKey:
    label: str  # a readable prefix of the folder name, e.g. "yolov8n-480x640"
    weights_sha256: str
    input_shape: tuple[int, ...]  # -1 = a dynamic axis
    backend: str
    precision: str
    versions: str
    calibration: str = ""  # int8: digest of the calibration data

    def folder(self) -> Path:
        text = json.dumps({**self.__dict__, "format": EXPORT_FORMAT}, sort_keys=True)
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        return cache_dir() / "exports" / f"{self.label}-{self.backend}-{self.precision}-{digest}"


_LOCK = threading.Lock()


def _manifest_ok(folder: Path) -> bool:
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        files: dict[str, str] = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return bool(files) and all(
        (folder / name).is_file() and sha256_of(folder / name) == sha for name, sha in files.items()
    )


def cached_export(key: ExportKey, make: Callable[[Path], list[str]]) -> Path:
    """The folder of a verified export for ``key``; ``make(tmp_folder)`` writes it (returning the
    names of the files it wrote) when it is missing or damaged."""
    folder = key.folder()
    with _LOCK:
        if folder.is_dir():
            if _manifest_ok(folder):
                return folder
            rejected = folder.with_name(folder.name + ".rejected")
            shutil.rmtree(rejected, ignore_errors=True)
            os.replace(folder, rejected)
            log.warning(
                "exported model %s was damaged; moved to %s, exporting again", folder, rejected
            )
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = folder.with_name(f".{folder.name}.{os.getpid()}.part")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            written = make(tmp)
            manifest = {
                "key": {**key.__dict__, "format": EXPORT_FORMAT},
                "files": {name: sha256_of(tmp / name) for name in written},
            }
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
            os.replace(tmp, folder)  # atomic: the name appears whole or not at all
        except OSError as exc:
            raise AssetError(
                f"cannot write the exported model under {folder.parent}: {exc}"
            ) from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        log.info("exported %s to %s", key.label, folder)
        return folder


def export_onnx(
    module: Any, example: Any, path: Path, dynamic_batch: bool, output_index: int = 0
) -> None:
    """``module(example)`` traced to ONNX (opset 17) with one input ``x`` and one output ``y``
    (output ``output_index`` where the module returns several)."""
    import warnings

    import torch

    class _One(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.inner(x)
            return y[output_index] if isinstance(y, tuple | list) else y

    axes = {"x": {0: "n"}, "y": {0: "n"}} if dynamic_batch else None
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _One(module).eval(),
            (example,),
            str(path),
            input_names=["x"],
            output_names=["y"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )


class Runner:
    """One compiled model. ``run_many`` keeps several inputs in flight (OpenVINO's throughput
    mode: one request per CPU stream), so streaming callers hand it a few inputs at a time."""

    backend: str
    streams: int = 1  # inputs worth keeping in flight at once

    def run(self, x: NDArray[Any]) -> NDArray[np.float32]:
        return self.run_many([x])[0]

    def run_many(self, xs: Sequence[NDArray[Any]]) -> list[NDArray[np.float32]]:
        raise NotImplementedError


class OpenVINORunner(Runner):
    backend = "openvino"

    def __init__(
        self,
        model: Any,
        uint8_bgr_nhwc: bool = False,
        scale: float = 1.0,
        hint: str = "THROUGHPUT",
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> None:
        """``uint8_bgr_nhwc``: the input is uint8 BGR images (N, H, W, 3) and the graph does
        the layout, colour conversion and normalisation, ``(RGB - mean) / std / scale``,
        each per RGB channel where a sequence, in parallel on every core."""
        import openvino as ov

        core = ov.Core()
        if uint8_bgr_nhwc:
            # Let OpenVINO do HWC→CHW, BGR→RGB and the scaling inside the graph, in parallel.
            from openvino.preprocess import ColorFormat, PrePostProcessor

            ppp = PrePostProcessor(model)
            ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(
                ov.Layout("NHWC")
            ).set_color_format(ColorFormat.BGR)
            ppp.input().model().set_layout(ov.Layout("NCHW"))
            steps = ppp.input().preprocess()
            steps.convert_element_type(ov.Type.f32).convert_color(ColorFormat.RGB)
            if mean is not None:
                steps.mean([float(m) for m in mean])
            if std is not None:
                steps.scale([float(v) for v in std])
            if scale != 1.0:
                steps.scale(scale)
            model = ppp.build()
        # OpenVINO's own cache of compiled blobs: a new process skips most of the compile
        cache = cache_dir() / "exports" / "openvino-compiled"
        # fp32 means fp32: on CPUs with AVX512_BF16 or AMX, OpenVINO would otherwise run the
        # graph in bfloat16 (embeddings then agree with torch to cosine ~0.996, not ~1.0, and
        # rankings move).
        self._compiled = core.compile_model(
            model,
            "CPU",
            {"PERFORMANCE_HINT": hint, "CACHE_DIR": str(cache), "INFERENCE_PRECISION_HINT": "f32"},
        )
        self._queue = ov.AsyncInferQueue(self._compiled, 0)
        self.streams = len(self._queue)

    def run_many(self, xs: Sequence[NDArray[Any]]) -> list[NDArray[np.float32]]:
        out: list[Any] = [None] * len(xs)

        def done(request: Any, i: int) -> None:
            out[i] = np.array(request.get_output_tensor(0).data, dtype=np.float32, copy=True)

        self._queue.set_callback(done)
        for i, x in enumerate(xs):
            self._queue.start_async({0: np.ascontiguousarray(x)}, i)
        self._queue.wait_all()
        return out


class OnnxRuntimeRunner(Runner):
    backend = "onnxruntime"

    def __init__(self, onnx_path: Path) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(
            str(onnx_path), options, providers=["CPUExecutionProvider"]
        )

    def run_many(self, xs: Sequence[NDArray[Any]]) -> list[NDArray[np.float32]]:
        return [
            np.asarray(self._session.run(["y"], {"x": np.ascontiguousarray(x)})[0], np.float32)
            for x in xs
        ]


def load_runner(
    folder: Path,
    backend: str,
    uint8_bgr_nhwc: bool = False,
    scale: float = 1.0,
    streaming: bool = True,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> Runner:
    """A runner for an export folder; a file that no runtime can read is an AssetError.
    ``streaming``: several inputs in flight (OpenVINO THROUGHPUT); else one big input at a
    time on every core (LATENCY). ``uint8_bgr_nhwc``, ``mean``, ``std``, ``scale``: see
    ``OpenVINORunner`` (OpenVINO only)."""
    try:
        if backend == "openvino":
            import openvino as ov

            xml = folder / "model.xml"
            model = ov.Core().read_model(str(xml if xml.is_file() else folder / "model.onnx"))
            hint = "THROUGHPUT" if streaming else "LATENCY"
            return OpenVINORunner(model, uint8_bgr_nhwc, scale, hint, mean, std)
        return OnnxRuntimeRunner(folder / "model.onnx")
    except Exception as exc:  # a runtime raises its own types for a bad file
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise AssetError(f"cannot load the exported model in {folder} ({reason})") from None


def quantize_int8(onnx_path: Path, calibration: Sequence[NDArray[Any]], out_xml: Path) -> None:
    """NNCF post-training quantisation of an ONNX model for OpenVINO, calibrated on
    ``calibration`` (model inputs, as the runtime will receive them)."""
    try:
        import nncf
    except ImportError:
        raise AssetError(
            "precision int8 needs NNCF: pip install nncf (or pip install 'prowl[int8]')"
        ) from None
    import openvino as ov

    model = ov.Core().read_model(str(onnx_path))
    quantized = nncf.quantize(
        model,
        nncf.Dataset(list(calibration)),
        preset=nncf.QuantizationPreset.MIXED,
        subset_size=len(calibration),
    )
    ov.save_model(quantized, str(out_xml), compress_to_fp16=False)
