"""`prowl import-onnx`: an OSNet exported to ONNX as a checkpoint of prowl's own OSNet, checked
against ONNX Runtime before it is written."""

from __future__ import annotations

import argparse
import json

from pipeline.core.errors import ProwlError
from pipeline.core.outputs import write_text


def cmd_import_onnx(args: argparse.Namespace) -> int:
    """Convert, check the two agree on random inputs and on real people of the sample video,
    then write the state dict (torchreid's layout: `--reid torchreid:ARCH --reid-weights`)
    and a card beside it."""
    import numpy as np
    import torch

    from pipeline.core.assets import resolve, sha256_of
    from pipeline.core.crops import crop_boxes
    from pipeline.core.video import read_frames
    from reid.onnx_import import agreement, osnet_from_onnx, state_from_onnx
    from reid.osnet import ARCHS
    from reid.preprocess import preprocess

    if args.arch not in ARCHS:
        raise ProwlError(f"--arch {args.arch}: not an OSNet prowl knows ({', '.join(ARCHS)})")
    if not args.onnx.is_file():
        raise ProwlError(f"{args.onnx} does not exist; give the .onnx file")
    if args.out.exists():
        raise ProwlError(f"{args.out} exists; choose a new file name")
    model = osnet_from_onnx(args.onnx, args.arch)  # a file of another architecture fails here
    torch.manual_seed(0)
    noise = torch.randn(8, 3, 256, 128)
    frame = next(iter(read_frames(resolve("vtest.avi"), first_index=55, stop_index=56))).image
    people = crop_boxes(frame, np.asarray([[484, 210, 522, 299], [640, 248, 680, 361]], np.float32))
    real = torch.from_numpy(preprocess(people, (256, 128)).transpose(0, 3, 1, 2).copy())
    worst = min(agreement(model, args.onnx, noise), agreement(model, args.onnx, real))
    if worst < args.min_cosine:
        raise ProwlError(
            f"prowl's {args.arch} and ONNX Runtime agree only to cosine {worst:.6f} "
            f"(< {args.min_cosine}); not written"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state_from_onnx(args.onnx, args.arch), args.out)
    card = {
        "made_by": "prowl import-onnx",
        "source": args.onnx.name,
        "source_sha256": sha256_of(args.onnx),
        "arch": args.arch,
        "weights_sha256": sha256_of(args.out),
        "min_cosine_vs_onnxruntime": round(worst, 7),
        "checked_on": "8 random inputs and 2 people of the sample video (frame 55)",
        "torch": torch.__version__,
    }
    write_text(args.out.with_suffix(".card.json"), json.dumps(card, indent=2) + "\n")
    size = args.out.stat().st_size / 1e6
    print(
        f"wrote {args.out} ({size:.1f} MB, {args.arch}); agrees with ONNX Runtime to cosine "
        f"{worst:.7f}; sha256 {card['weights_sha256']}"
    )
    return 0
