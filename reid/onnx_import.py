"""An OSNet exported to ONNX (torchreid's model, as in ``../shared/models``), read back into
prowl's own ``reid/osnet.py`` so that it can be run, fine-tuned and distilled like any other
checkpoint.

The export folded each batch norm that follows a convolution into that convolution (a weight
and a bias; the batch norm nodes are gone). Each convolution node is named after the module
that made it (``/conv2/conv2.0/conv2a/conv2``), so its weights go to the module of that name;
a folded bias goes to the batch norm that follows it, set to pass values through (weight 1,
mean 0, variance 1 - eps) and add that bias. The result is checked against ONNX Runtime on
the same input before anything is written."""

from __future__ import annotations

import re
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.core.errors import AssetError
from pipeline.core.vectors import l2_normalise
from reid.osnet import OSNet, build_osnet


def _module_path(node_output: str) -> str:
    """'/conv2/conv2.0/conv2b/conv2b.0/conv1/Conv_output_0' -> 'conv2.0.conv2b.0.conv1'."""
    segments = node_output.strip("/").split("/")[:-1]
    names: list[str] = []
    for seg in segments:
        if names and seg.startswith(names[-1] + "."):
            names[-1] = seg
        else:
            names.append(seg)
    return ".".join(names)


def _norm_after(conv_path: str, own: dict[str, torch.Tensor]) -> str:
    """The batch norm that follows the convolution at ``conv_path`` in prowl's OSNet."""
    parent = conv_path.rsplit(".", 1)[0]
    if f"{parent}.bn.weight" in own:
        return f"{parent}.bn"
    raise AssetError(f"no batch norm follows {conv_path} in prowl's OSNet")


def state_from_onnx(path: Path, arch: str) -> OrderedDict[str, torch.Tensor]:
    """A state dict for ``build_osnet(arch)`` from the ONNX file at ``path``; an AssetError
    in one line when the file is not an ONNX export of that architecture."""
    import onnx

    try:
        graph = onnx.load(str(path)).graph
    except Exception as exc:
        raise AssetError(
            f"{path} is not an ONNX model ({str(exc).splitlines()[0][:100]})"
        ) from None
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in graph.initializer}
    model = build_osnet(arch)
    own = model.state_dict()
    state: dict[str, torch.Tensor] = {}
    eps = 1e-5

    def put(key: str, value: np.ndarray[Any, Any]) -> None:
        if key not in own:
            raise AssetError(
                f"{Path(path).name} is not an {arch} export: it has {key}, which {arch} lacks"
            )
        tensor = torch.from_numpy(np.array(value, copy=True)).to(own[key].dtype)
        if tensor.shape != own[key].shape:
            raise AssetError(
                f"{Path(path).name} is not an {arch} export: {key} is "
                f"{tuple(tensor.shape)}, {arch} has {tuple(own[key].shape)}"
            )
        state[key] = tensor

    for node in graph.node:
        if node.op_type not in ("Conv", "Gemm", "BatchNormalization"):
            continue
        module = _module_path(node.output[0])
        if re.search(r"_\d+$", module):  # a shared module applied again (OSNet's gate)
            continue
        if node.op_type == "BatchNormalization":
            for name, field in zip(
                node.input[1:], ("weight", "bias", "running_mean", "running_var"), strict=True
            ):
                put(f"{module}.{field}", inits[name])
            continue
        put(f"{module}.weight", inits[node.input[1]])
        if len(node.input) < 3:
            continue
        bias = inits[node.input[2]]
        if f"{module}.bias" in own:
            put(f"{module}.bias", bias)
            continue
        bn = _norm_after(module, own)  # a batch norm folded into this convolution
        put(f"{bn}.weight", np.ones_like(bias))
        put(f"{bn}.bias", bias)
        put(f"{bn}.running_mean", np.zeros_like(bias))
        put(f"{bn}.running_var", np.full_like(bias, 1.0 - eps))
    for key, value in own.items():
        if key.endswith("num_batches_tracked"):
            state[key] = value
    missing = [k for k in own if k not in state]
    if missing:
        raise AssetError(
            f"{Path(path).name} is not an {arch} export: {len(missing)} of its parameters are "
            f"not in the file (e.g. {missing[0]})"
        )
    return OrderedDict((k, state[k]) for k in own)


def osnet_from_onnx(path: Path, arch: str) -> OSNet:
    model = build_osnet(arch)
    model.load_state_dict(state_from_onnx(path, arch), strict=True)
    return model.eval()


def agreement(model: OSNet, onnx_path: Path, images: torch.Tensor) -> float:
    """The lowest cosine between ``model``'s and ONNX Runtime's embeddings of ``images``
    ((N, 3, 256, 128), normalised as the model expects)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    theirs = session.run(None, {name: images.numpy().astype(np.float32)})[0]
    with torch.no_grad():
        ours = model.eval()(images).numpy()
    ours, theirs = l2_normalise(ours), l2_normalise(theirs)
    return float((ours * theirs).sum(axis=1).min())
