"""Golden test data for the runtime: ``.sepnet`` files plus PyTorch's outputs for them.

For ``sepnet_cifar`` and ``resnet20`` in R, B and BQ this writes
``<out>/<model>-<variant>.sepnet`` (variant in lower case) and
``<out>/<model>-<variant>.bundle.safetensors`` (``docs/FORMAT.md`` section 6): a fixed input
``[2, 3, 32, 32]``, the logits and a few intermediate activations ``act/<node>``.

The weights are random (fixed seeds) and every batch norm is pushed away from the identity
(non-zero means, varied variances, some negative γ) so that folding, negative pattern scales
and biases are all exercised. B / BQ are binarized with the paper's α method, policy ``all``
(``shared/paper/NOTES.md`` lines 12-13). Values come from the PyTorch module itself
(``model.eval()``, forward hooks) for R and B; BQ's deployed weights differ from the module by
int8 rounding, so its values come from ``sepnet_train.reference`` on the exported file.

Plus ``tiny-b`` (``TinyNet``): a hand-made B net covering what the real models do not
(pattern padding bits, a non-square kernel and input, softmax).

    python -m sepnet_train.golden --out tests/golden
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn as nn

from . import quant, reference
from .export import (EXPORTER, build_graph, default_preprocess, export_sepnet, save_safetensors,
                     write_sepnet)
from .models import create_model

MODELS = ("sepnet_cifar", "resnet20")
VARIANTS = ("R", "B", "BQ")
BATCH = 2
SEED = 20240  # weights; SEED + 1: batch-norm statistics; SEED + 2: the input
CREATED = "2000-01-01T00:00:00Z"  # pinned so regenerated files are identical

# node name -> (submodule, "out" for its output or "in" for its first input), per model.
# Chosen to cover: the first conv (pre-ReLU), a PRB sum, a projection shortcut, module / block
# outputs and the pooled features.
ACTS = {
    "sepnet_cifar": {
        "conv1": ("conv1.bn", "out"),
        "module2.slice1": ("module2.slice1.bn", "out"),
        "module2.relu": ("module2", "out"),
        "conv4.relu": ("conv4", "out"),
        "pool": ("fc", "in"),
    },
    "resnet20": {
        "conv1": ("bn1", "out"),
        "block4.shortcut": ("blocks.3.shortcut_bn", "out"),
        "block4.relu": ("blocks.3", "out"),
        "block9.relu": ("blocks.8", "out"),
        "pool": ("fc", "in"),
    },
}


def perturb_batchnorm(model: nn.Module, generator: torch.Generator) -> None:
    """Move every BN's running statistics and affine parameters away from the identity."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=generator) * 0.5)
            m.running_var.copy_(torch.rand(c, generator=generator) * 1.5 + 0.5)
            gamma = torch.rand(c, generator=generator) + 0.5
            # About one channel in five gets a negative γ: negative folded pattern scales.
            flip = torch.rand(c, generator=generator) < 0.2
            m.weight.data.copy_(torch.where(flip, -gamma, gamma))
            m.bias.data.copy_(torch.randn(c, generator=generator) * 0.3)


def make_model(name: str, variant: str, seed: int = SEED) -> nn.Module:
    """The deterministic random model a golden file is made from (eval mode)."""
    torch.manual_seed(seed)
    model = create_model(name)
    with torch.no_grad():
        perturb_batchnorm(model, torch.Generator().manual_seed(seed + 1))
    if variant in ("B", "BQ"):
        quant.binarize_model(model, method="alpha", policy="all")
    return model.eval()


def make_input(seed: int = SEED, shape=(BATCH, 3, 32, 32)) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed + 2))


@torch.no_grad()
def module_outputs(model: nn.Module, x: torch.Tensor, acts: dict) -> tuple[torch.Tensor, dict]:
    """(logits, {node: activation}) from the nn.Module, activations caught by forward hooks."""
    got, handles = {}, []
    modules = dict(model.named_modules())
    for node, (path, where) in acts.items():
        def hook(mod, inp, out, node=node, where=where):
            got[node] = (inp[0] if where == "in" else out).detach().clone()
        handles.append(modules[path].register_forward_hook(hook))
    try:
        logits = model(x)
    finally:
        for h in handles:
            h.remove()
    return logits, got


def file_stem(model_name: str, variant: str) -> str:
    return f"{model_name}-{variant.lower()}"


def write_bundle(path, tensors: dict[str, torch.Tensor], model_file: str) -> None:
    """A golden bundle (``docs/FORMAT.md`` section 6), all tensors F32."""
    arrays = {k: v.detach().cpu().to(torch.float32).contiguous().numpy()
              for k, v in tensors.items()}
    save_safetensors(path, arrays, {"sepnet.bundle": "1", "model": model_file})


def make_golden(model_name: str, variant: str, out_dir) -> tuple[Path, Path]:
    """Write one model file and its bundle; returns their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = file_stem(model_name, variant)
    model_path, bundle_path = out_dir / f"{stem}.sepnet", out_dir / f"{stem}.bundle.safetensors"
    model = make_model(model_name, variant)
    export_sepnet(model, model_name, variant, model_path, trained=False,
                  binarization={"method": "alpha", "policy": "all"},
                  provenance_extra={"created": CREATED, "seed": SEED, "golden": True})
    x = make_input()
    acts = ACTS[model_name]
    ref = reference.load(model_path)
    ref_logits, ref_acts = ref.run(x, capture=list(acts))
    if variant == "BQ":
        logits, values = ref_logits, ref_acts
    else:
        logits, values = module_outputs(model, x, acts)
        # Never write a golden set the exporter itself disagrees with.
        scale = float(logits.abs().max())
        err = float((ref_logits - logits).abs().max())
        if err > 1e-4 * scale:
            raise AssertionError(f"{stem}: exported file differs from the module by {err}")
    tensors = {"input": x, "logits": logits, **{f"act/{k}": v for k, v in values.items()}}
    write_bundle(bundle_path, tensors, model_path.name)
    return model_path, bundle_path


class TinyNet(nn.Module):
    """A hand-made net for the corners the real models miss: pattern rows with padding bits
    (3·3·3 = 27 and 4·3·3 = 36 weights per filter), a non-square (3×1) pattern kernel, a
    non-square input (9×7), max-pool padding, concat, grouped convs and softmax."""

    def __init__(self):
        super().__init__()
        self.conv1 = quant.PatternConv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.pool1 = nn.MaxPool2d(3, 2, 1)
        self.pattern = quant.PatternConv2d(8, 8, 3, padding=1, groups=2, bias=False)
        self.pointwise = quant.PatternConv2d(8, 8, 1, groups=2, bias=True, role="pointwise")
        self.bn2 = nn.BatchNorm2d(8)
        self.conv3 = quant.PatternConv2d(16, 6, (3, 1), stride=2, padding=(1, 0), bias=False)
        self.bn3 = nn.BatchNorm2d(6)
        self.fc = nn.Linear(6, 5)

    def forward(self, x):
        p = self.pool1(self.bn1(self.conv1(x)))  # pooled before any ReLU: −∞ padding matters
        s = torch.relu(self.bn2(self.pattern(p) + self.pointwise(p)))
        z = self.bn3(self.conv3(torch.cat([s, p], dim=1)))
        return torch.softmax(self.fc(z.mean(dim=(2, 3))), dim=1)

    def export_graph(self, g):
        p = g.maxpool("pool1", g.conv("conv1", self.conv1, g.input, bn=self.bn1), 3, 2, 1)
        s = g.relu("prb.relu", g.conv_sum("prb", [("pattern", self.pattern),
                                                  ("pointwise", self.pointwise)], p, bn=self.bn2))
        z = g.conv("conv3", self.conv3, g.concat("concat", [s, p]), bn=self.bn3)
        return g.softmax("prob", g.linear("fc", self.fc, g.gap("pool", z)))


TINY_SHAPE = (3, 9, 7)
TINY_ACTS = {"conv1": ("bn1", "out"), "pool1": ("pool1", "out"), "prb": ("bn2", "out"),
             "concat": ("conv3", "in"), "conv3": ("bn3", "out"), "fc": ("fc", "out")}


def make_tiny(seed: int = SEED) -> nn.Module:
    torch.manual_seed(seed)
    model = TinyNet()
    with torch.no_grad():
        perturb_batchnorm(model, torch.Generator().manual_seed(seed + 1))
        model.fc.weight.mul_(4.0)  # spread the logits so the softmax is not flat
        model.bn1.bias.sub_(1.5)  # mostly negative pool input, so −∞ vs 0 padding differs
    for conv in (model.conv1, model.pattern, model.conv3):
        conv.binarize("alpha")
    return model.eval()


def make_tiny_golden(out_dir) -> tuple[Path, Path]:
    """``tiny-b.sepnet`` and its bundle (values from the module)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model_path, bundle_path = out_dir / "tiny-b.sepnet", out_dir / "tiny-b.bundle.safetensors"
    model = make_tiny()
    g = build_graph(model, "B", list(TINY_SHAPE))
    pre = default_preprocess("cifar10", 0)
    pre["input_size"] = list(TINY_SHAPE[1:])
    prov = {"model": "tiny", "variant": "B", "dataset": "none", "trained": False,
            "accuracy": None, "binarization": "alpha", "binarization_policy": None,
            "binarized_layers": g.binarized_layers, "exporter": EXPORTER, "created": CREATED,
            "seed": SEED, "golden": True}
    write_sepnet(model_path, g, ["a", "b", "c", "d", "e"], pre, prov)
    x = make_input(shape=(BATCH, *TINY_SHAPE))
    logits, values = module_outputs(model, x, TINY_ACTS)
    ref_logits = reference.load(model_path)(x)
    if float((ref_logits - logits).abs().max()) > 1e-5:
        raise AssertionError("tiny-b: exported file differs from the module")
    tensors = {"input": x, "logits": logits, **{f"act/{k}": v for k, v in values.items()}}
    write_bundle(bundle_path, tensors, model_path.name)
    return model_path, bundle_path


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="write golden .sepnet files and bundles")
    ap.add_argument("--out", default="tests/golden")
    ap.add_argument("--models", nargs="*", default=list(MODELS), choices=MODELS)
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=VARIANTS)
    ap.add_argument("--no-tiny", action="store_true", help="skip tiny-b (see TinyNet)")
    a = ap.parse_args(argv)
    if not a.no_tiny:
        for p in make_tiny_golden(a.out):
            print(f"{p} ({p.stat().st_size} bytes)")
    for m in a.models:
        for v in a.variants:
            for p in make_golden(m, v, a.out):
                print(f"{p} ({p.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
