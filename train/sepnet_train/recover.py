"""Rebuild a trainable checkpoint from a real-valued (R) ``.sepnet`` file.

Training checkpoints live outside the repository and can be lost with a machine; the committed
R file still holds the whole network, with each batch norm folded into the convolution(s)
before it (``export.py``: W' = s·W, b' = β − μ·s, s = γ/sqrt(var + eps)). This puts it back
into the PyTorch model so it can be binarized and refined again (``train.py --finetune-from``).

For each BN, the per-channel mean m and variance v of W'x are measured on training images;
the weights are rescaled by c = 1/sqrt(v) (pre-BN activations of unit variance, a neutral
scale for weight decay) and the BN set to running mean c·m, running var c²·v,
γ = sqrt(v + eps/c²), β = b' + m. In eval mode that is exactly W'x + b' (the file's function);
in train mode BN normalizes by batch statistics close to the measured ones, which is the
original network again (γ comes back as ±γ_original, β as β_original).

Binarizing the recovered weights gives the original patterns: per-filter alpha binarization
commutes with a per-output-channel factor s of either sign, sign(sW)·mean|sW| = s·sign(W)·mean|W|,
and the BN after the conv absorbs s. The fixed-offset binarization does not commute (it needs
the unfolded weights), so recovered checkpoints are for ``--binarize alpha``.

    python -m sepnet_train.recover www/models/sepnet_cifar-r.sepnet \
        --out ~/sepnet-runs/sepnet_cifar-R-recovered/checkpoint.pth
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from . import data as D
from . import reference
from .export import GraphBuilder
from .models import create_model


class _Recorder(GraphBuilder):
    """Runs a model's ``export_graph`` to learn which graph node each module became."""

    def __init__(self, input_shape):
        super().__init__("R", list(input_shape))
        self.units: list[tuple[list[tuple[str, nn.Conv2d]], nn.BatchNorm2d | None, str]] = []
        self.linears: list[tuple[str, nn.Linear]] = []

    def conv(self, name, conv, x, bn=None):
        # (node names and convs feeding one BN, BN, the node holding the folded bias)
        self.units.append(([(name, conv)], bn, name))
        return super().conv(name, conv, x, bn)

    def conv_sum(self, name, branches, x, bn=None):
        branches = list(branches)
        convs = [(f"{name}.{suffix}", conv) for suffix, conv in branches]
        self.units.append((convs, bn, convs[-1][0]))
        return super().conv_sum(name, branches, x, bn)

    def linear(self, name, fc, x):
        self.linears.append((name, fc))
        return super().linear(name, fc, x)


def model_name_of(ref: reference.RefModel) -> str:
    name = ref.provenance.get("model") if isinstance(ref.provenance, dict) else None
    if not isinstance(name, str):
        raise ValueError("the file's provenance does not name its model; pass --model")
    return name


@torch.no_grad()
def recover_model(ref: reference.RefModel, model_name: str, calib: torch.Tensor,
                  batch_size: int = 250) -> nn.Module:
    """A ``model_name`` module computing what ``ref`` computes, with BN statistics from ``calib``
    (normalized images [N, 3, H, W])."""
    if ref.graph.get("nodes") and any(isinstance(n.get("weight"), dict)
                                      and n["weight"].get("encoding") == "pattern"
                                      for n in ref.graph["nodes"]):
        raise ValueError("the file holds binarized layers: recover from the R file")
    model = create_model(model_name, num_classes=len(ref.labels))
    rec = _Recorder(ref.graph["input"]["shape"])
    model.export_graph(rec)
    if {n["name"] for n in ref.graph["nodes"]} != set(rec.shapes) - {rec.input}:
        raise ValueError(f"the file's graph is not a {model_name} graph")

    def weight(name, like):
        w = ref.weights[name]
        if tuple(w.shape) != tuple(like.shape):
            raise ValueError(f"{name}: weight {tuple(w.shape)} in the file, "
                             f"{tuple(like.shape)} in {model_name}")
        return w.to(like.dtype)

    # 1. folded weights in; every BN the identity plus the folded bias (exact in eval mode).
    for convs, bn, bias_node in rec.units:
        for name, conv in convs:
            conv.weight.copy_(weight(name, conv.weight))
            if conv.bias is not None:
                conv.bias.zero_()
        b = ref.biases[bias_node]
        b = torch.zeros(convs[0][1].out_channels) if b is None else b.float()
        if bn is None:
            if convs[-1][1].bias is None:
                raise ValueError(f"{bias_node}: a folded bias with nowhere to go")
            convs[-1][1].bias.copy_(b)
            continue
        bn.running_mean.zero_()
        bn.running_var.fill_(1.0)
        bn.weight.fill_(float(np.sqrt(1.0 + bn.eps)))
        bn.bias.copy_(b)
    for name, fc in rec.linears:
        fc.weight.copy_(weight(name, fc.weight))
        b = ref.biases[name]
        if fc.bias is not None:
            fc.bias.copy_(torch.zeros_like(fc.bias) if b is None else b.float())

    # 2. per-channel mean / variance of every BN's input, in eval mode (the file's function).
    sums: dict[nn.BatchNorm2d, torch.Tensor] = {}

    def hook(bn, inputs):
        z = inputs[0].double()
        s = torch.stack([z.sum((0, 2, 3)), z.pow(2).sum((0, 2, 3)),
                         torch.full((z.shape[1],), z.numel() / z.shape[1], dtype=z.dtype)])
        sums[bn] = sums[bn] + s if bn in sums else s

    bns = [bn for _, bn, _ in rec.units if bn is not None]
    handles = [bn.register_forward_pre_hook(hook) for bn in bns]
    model.eval()
    for i in range(0, len(calib), batch_size):
        model(calib[i:i + batch_size].float())
    for h in handles:
        h.remove()

    # 3. rescale to unit-variance pre-BN activations and set BN so eval mode is unchanged.
    for convs, bn, _ in rec.units:
        if bn is None:
            continue
        s = sums[bn]
        m = s[0] / s[2]
        v = (s[1] / s[2] - m * m).clamp_min(0)
        c = torch.where(v > 1e-12, v.clamp_min(1e-12).rsqrt(), torch.ones_like(v))
        for _, conv in convs:
            conv.weight.mul_(c.view(-1, 1, 1, 1).to(conv.weight.dtype))
        bn.running_mean.copy_(c * m)
        bn.running_var.copy_(c * c * v)
        bn.weight.copy_((v + bn.eps / (c * c)).sqrt())
        bn.bias.add_(m.float())
    return model


def calibration_images(data_path: Path, n: int, val_per_class: int = 500,
                       seed: int = 0) -> torch.Tensor:
    """``n`` training-split images (never validation ones), normalized, no augmentation."""
    images, labels, _, files = D.load_uint8(Path(data_path), 32)
    train_idx = np.flatnonzero(~D.validation_mask(files, labels, val_per_class))
    pick = np.sort(np.random.RandomState(seed).permutation(train_idx)[:n])
    loader = D.TensorLoader(images[pick], labels[pick], batch_size=n, train=False,
                            channels_last=False)
    return next(iter(loader))[0]


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("file", help="a real-valued (R) .sepnet file")
    p.add_argument("--out", required=True, help="checkpoint to write (train.py format)")
    p.add_argument("--model", default=None, help="model name (default: the file's provenance)")
    p.add_argument("--data-path", default=str(D.DEFAULT_CIFAR_TRAIN))
    p.add_argument("--calibration-images", type=int, default=5000)
    p.add_argument("--val-per-class", type=int, default=500)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    raw = Path(args.file).read_bytes()
    ref = reference.RefModel(*reference.read_safetensors(raw))
    name = args.model or model_name_of(ref)
    calib = calibration_images(Path(args.data_path), args.calibration_images, args.val_per_class)
    model = recover_model(ref, name, calib)
    x = calib[:500]
    with torch.no_grad():
        drift = float((model.eval()(x) - ref.run(x)[0]).abs().max())
    ckpt = {"model": model.state_dict(), "epoch": -1, "history": [],
            "args": {"model": name, "binarize": "none", "val_per_class": args.val_per_class},
            "classes": list(ref.labels),
            "accuracy": ref.provenance.get("accuracy") if isinstance(ref.provenance, dict) else None,
            "extra": {"recovered_from": str(args.file),
                      "recovered_sha256": hashlib.sha256(raw).hexdigest(),
                      "calibration_images": args.calibration_images,
                      "max_logit_difference": drift}}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, out)
    summary = {"model": name, "out": str(out), "max_logit_difference": drift}
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
