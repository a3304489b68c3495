"""OSNet-AIN written here loads torchreid's osnet_ain checkpoints: the parameter names are
those of torchreid's osnet_ain.py, every checkpoint form loads, and the normalisation sits
where the architecture puts it."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.core.config import ReidConfig
from pipeline.core.errors import AssetError
from reid.osnet import build_osnet, load_osnet

# Names as torchreid's osnet_ain.py registers them (ModuleList streams, pool2/pool3, IN in
# conv1 and in the blocks chosen by its search: conv2 both, conv3 second, conv4 first).
TORCHREID_KEYS = [
    "conv1.conv.weight",
    "conv1.bn.weight",  # InstanceNorm2d(affine): weight and bias, no running stats
    "conv2.0.conv2.3.layers.3.conv2.weight",  # 4th stream, 4th lite conv, depthwise
    "conv2.0.gate.fc1.bias",
    "conv2.0.conv3.conv.weight",
    "conv2.0.IN.weight",
    "conv2.0.downsample.bn.running_var",
    "conv2.1.IN.bias",
    "pool2.0.conv.weight",
    "pool3.0.bn.running_mean",
    "conv3.0.conv3.bn.weight",  # a plain OSBlock: batch norm at the end of the branch
    "conv3.1.IN.weight",
    "conv4.0.IN.weight",
    "conv5.conv.weight",
    "fc.0.weight",
    "fc.1.running_var",
]
ABSENT = [
    "conv1.bn.running_mean",
    "conv2.0.conv3.bn.weight",
    "conv3.0.IN.weight",
    "conv4.1.IN.weight",
]


def test_parameter_names_are_torchreids() -> None:
    keys = set(build_osnet("osnet_ain_x1_0").state_dict())
    assert set(TORCHREID_KEYS) <= keys
    assert not set(ABSENT) & keys
    params = sum(p.numel() for p in build_osnet("osnet_ain_x1_0").parameters())
    assert 2.1e6 < params < 2.3e6  # torchreid's model zoo: 2.2M


@pytest.mark.parametrize("form", ["zip", "state_dict_wrapper_module_prefix"])
def test_checkpoint_forms_load_and_embed(tmp_path: Path, form: str) -> None:
    from reid import build_embedder

    torch.manual_seed(0)
    src = build_osnet("osnet_ain_x0_25", num_classes=7)
    for m in src.modules():  # non-trivial norms, so that a misplaced one changes the output
        if isinstance(m, torch.nn.InstanceNorm2d | torch.nn.BatchNorm2d) and m.affine:
            torch.nn.init.uniform_(m.weight, 0.5, 1.5)
    state = src.state_dict()
    path = tmp_path / "ain.pth"
    if form == "zip":
        torch.save(state, path)
    else:
        torch.save({"state_dict": OrderedDict((f"module.{k}", v) for k, v in state.items())}, path)

    loaded = load_osnet("osnet_ain_x0_25", path)
    x = torch.rand(3, 3, 256, 128)
    with torch.no_grad():
        np.testing.assert_allclose(loaded(x).numpy(), src.eval()(x).numpy(), atol=1e-5)

    emb = build_embedder(
        ReidConfig(
            name="torchreid:osnet_ain_x0_25",
            batch_crops=4,
            device="cpu",
            weights=str(path),
            backend="torch",
        )
    )
    crops = [np.random.default_rng(i).integers(0, 255, (120, 50, 3), np.uint8) for i in range(3)]
    vecs = emb.embed(crops)
    assert vecs.shape == (3, 512)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)


def test_a_plain_osnet_checkpoint_is_not_taken_as_ain(tmp_path: Path) -> None:
    path = tmp_path / "plain.pth"
    torch.save(build_osnet("osnet_x1_0").state_dict(), path)
    with pytest.raises(AssetError, match="is not a osnet_ain_x1_0 checkpoint"):
        load_osnet("osnet_ain_x1_0", path)
