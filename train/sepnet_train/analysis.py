"""The poster's own analysis, redone on our trained real-valued weights.

1. Averaged quantization error per filter size (poster, GoogLeNet: 1×1 0.0462, 3×3 0.0029,
   5×5 0.0056): for every conv layer, ``quant.quantization_error`` (mean over filters of the
   per-weight squared error of the least-squares binarization αB), averaged over the layers of
   each kernel size.
2. How hard the convs that become patterns are to binarize, scale-free
   (``quant.relative_quantization_error``), so R models trained for different lengths compare.
3. The poster's figure: one trained 3×3 filter (a single input channel slice) beside its
   binarized pattern.
4. With ``--flips B_CKPT``: how many pattern bits a refinement with learned patterns
   (``--binarize ste``) changed from the signs of the R model it started from.

    python -m sepnet_train.analysis --checkpoint RUN_R/checkpoint.pth --out docs/figures/NAME
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import torch
import torch.nn as nn

from .quant import binarizable, quantization_error, relative_quantization_error, sign

POSTER_GOOGLENET = {"1x1": 0.0462, "3x3": 0.0029, "5x5": 0.0056}


def quantization_errors(model: nn.Module) -> dict[str, dict]:
    per_size = defaultdict(list)
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            k = f"{m.kernel_size[0]}x{m.kernel_size[1]}"
            per_size[k].append(quantization_error(m.weight.detach()))
    return {k: {"layers": len(v), "mean_error": sum(v) / len(v)} for k, v in sorted(per_size.items())}


def pattern_relative_error(model: nn.Module) -> dict:
    """Mean over the convs binarization turns into patterns of their relative error."""
    errs = [relative_quantization_error(m.weight) for _, m in binarizable(model)]
    return {"layers": len(errs), "mean_relative_error": sum(errs) / len(errs) if errs else None}


def pattern_flips(binarized: nn.Module, source: nn.Module) -> dict:
    """Share of each binarized layer's pattern bits that differ from sign(source weight)."""
    src = dict(source.named_modules())
    layers, flipped, total = {}, 0, 0
    for name, m in binarized.named_modules():
        if getattr(m, "binarized", False):
            diff = int((m.pattern != sign(src[name].weight.detach())).sum())
            layers[name] = diff / m.pattern.numel()
            flipped, total = flipped + diff, total + m.pattern.numel()
    return {"layers": layers, "flipped": flipped, "bits": total,
            "share": flipped / total if total else None}


def pick_filter(model: nn.Module) -> torch.Tensor:
    """The 3×3 filter slice with the largest norm among the convs binarization would turn into
    patterns (``quant.binarizable``), so the figure shows a clear pattern."""
    best, best_norm = None, -1.0
    for _, m in binarizable(model):
        if m.kernel_size == (3, 3):
            w = m.weight.detach().flatten(0, 1)  # all (out, in) slices
            norms = w.flatten(1).norm(dim=1)
            i = int(norms.argmax())
            if norms[i] > best_norm:
                best, best_norm = w[i], float(norms[i])
    return best


def draw_figure(w: torch.Tensor, path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    b = sign(w)
    fig, axes = plt.subplots(1, 2, figsize=(6.4, 3.2))
    for ax, mat, label, fmt in ((axes[0], w, "trained 3×3 filter", "{:+.3f}"),
                                (axes[1], b, "binarized pattern", "{:+.0f}")):
        lim = float(mat.abs().max())
        ax.imshow(mat.numpy(), cmap="coolwarm", vmin=-lim, vmax=lim)
        for i in range(mat.shape[0]):
            for j in range(mat.shape[1]):
                ax.text(j, i, fmt.format(float(mat[i, j])), ha="center", va="center", fontsize=11)
        ax.set_title(label)
        ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True, help="a real-valued (R) checkpoint")
    p.add_argument("--out", required=True, help="output prefix: writes PREFIX.json and PREFIX-filter.png")
    p.add_argument("--no-figure", action="store_true", help="only the JSON")
    p.add_argument("--flips", metavar="B_CKPT", default=None,
                   help="a binarized checkpoint refined from --checkpoint: count its changed pattern bits")
    a = p.parse_args(argv)
    from .train import build_model_from_checkpoint, load_checkpoint
    ckpt = load_checkpoint(a.checkpoint)
    model = build_model_from_checkpoint(ckpt)
    errors = quantization_errors(model)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    acc = ckpt.get("accuracy") or {}
    result = {"model": ckpt["args"]["model"], "checkpoint": str(a.checkpoint),
              "epochs": ckpt["epoch"] + 1, "val_top1": acc.get("top1"), "errors": errors,
              "patterns": pattern_relative_error(model), "poster_googlenet": POSTER_GOOGLENET}
    if a.flips:
        result["flips"] = pattern_flips(build_model_from_checkpoint(load_checkpoint(a.flips)), model)
        result["flips"]["checkpoint"] = str(a.flips)
    Path(f"{out}.json").write_text(json.dumps(result, indent=1))
    if not a.no_figure:
        draw_figure(pick_filter(model), Path(f"{out}-filter.png"),
                    f"{ckpt['args']['model']}: a trained 3×3 filter and its pattern")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
