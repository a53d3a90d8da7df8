"""Real-valued (R) models -> ONNX, for cross-checking and benchmarking against onnxruntime.

Static input ``[1, 3, H, W]`` (H, W from the model registry), opset 17 (18 when only the
torch.export-based exporter is available), eval mode. Batch norm
is exported as-is (onnxruntime folds it when it optimizes the session), so the ONNX file is the
training module, not the ``.sepnet`` conversion: comparing the two checks the exporter.

    python -m sepnet_train.onnx_export --model resnet20 --checkpoint ckpt.pth --out r20.onnx
"""

from __future__ import annotations

import argparse
import contextlib
import io
import warnings
from pathlib import Path

import torch
import torch.nn as nn

from .models import create_model, get_spec

OPSET = 17


def export_onnx(model: nn.Module, model_name: str, path, opset: int = OPSET) -> Path:
    """Write ``model`` (real-valued, put in eval mode) as one self-contained ONNX file."""
    from . import quant
    if any(isinstance(m, quant.PatternConv2d) and m.binarized for m in model.modules()):
        raise ValueError("ONNX export is for real-valued (R) models only")
    spec = get_spec(model_name)
    model = model.eval()
    x = torch.zeros(1, 3, spec.input_size, spec.input_size)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # The TorchScript exporter writes opset 17 directly (and in a fraction of a second);
        # the torch.export-based one only emits opset >= 18 and cannot down-convert our
        # ReduceMean, so it is the fallback for torch versions without the legacy path.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=opset,
                              input_names=["input"], output_names=["logits"])
    except Exception as legacy_error:  # noqa: BLE001 - any failure: try the other exporter
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            try:
                prog = torch.onnx.export(model, (x,), dynamo=True, opset_version=max(opset, 18),
                                         input_names=["input"], output_names=["logits"],
                                         external_data=False, optimize=True)
            except Exception as e:
                raise RuntimeError(f"ONNX export failed (legacy: {legacy_error}; dynamo: {e})")
        prog.save(str(path), external_data=False)
    return path


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="export a real-valued model to ONNX")
    ap.add_argument("--model", help="registry name (taken from the checkpoint when omitted)")
    ap.add_argument("--checkpoint", help="training checkpoint (.pth); random weights when omitted")
    ap.add_argument("--seed", type=int, default=0, help="seed for random weights")
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    if a.checkpoint:
        from .export import load_checkpoint
        model, ckpt = load_checkpoint(a.checkpoint, a.model)
        name = ckpt["args"]["model"]
    else:
        if not a.model:
            ap.error("--model is required without --checkpoint")
        torch.manual_seed(a.seed)
        model, name = create_model(a.model), a.model
    print(export_onnx(model, name, a.out))


if __name__ == "__main__":
    main()
