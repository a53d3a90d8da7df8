"""Quantizers: pattern binarization of k×k filters and symmetric per-channel int8.

Plain functions first (larq style), then the one thin module that uses them.

Paper facts relied on (``shared/paper/NOTES.md`` section 1):
- only k×k filters with k > 1 are binarized ("patterns"); 1×1 filters stay real (or int8 in BQ);
- per filter W: minimise ||W − αB||² with B ∈ {−1,+1}: B = sign(W) with sign(0) = +1, α = mean|W|;
- the authors' repository variant: one constant offset for the whole network (0.09 for ResNet-20),
  binarized layers then frozen (lr 0) during fine-tuning.

Ours, not the paper's: ``ste`` binarizes as ``alpha`` but keeps the real weights as latent
variables whose signs are the patterns, trained through a straight-through estimator (as in
BinaryConnect / BWN), so patterns can still flip during fine-tuning. The exported file is the same
(pattern bits + α); only the fine-tuning differs.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

INT8_MAX = 127


def sign(x: torch.Tensor) -> torch.Tensor:
    """±1 sign that never returns 0 (sign(0) = +1, as the format's bit encoding requires)."""
    return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))


def pattern_alpha(w: torch.Tensor) -> torch.Tensor:
    """Per-output-filter α = mean|W| (the least-squares optimum for B = sign(W))."""
    return w.abs().flatten(1).mean(dim=1)


def binarize_alpha(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Paper's binarization: (pattern ±1 with w's shape, α per output filter)."""
    return sign(w), pattern_alpha(w)


def binarize_offset(w: torch.Tensor, offset: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Authors' repository variant: w -> +offset if w > 0 else -offset, one offset everywhere.

    The repository maps w == 0 to -offset; we keep sign(0) = +1 for a single convention
    (exact zeros do not occur in trained weights).
    """
    return sign(w), torch.full((w.shape[0],), float(offset), dtype=w.dtype, device=w.device)


def ste_sign(w: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
    """sign(w) forward; backward passes the gradient straight through as if it were w / scale.

    With ``scale`` = α per filter, α·ste_sign(W, α) hands the latent W exactly the gradient of
    the effective weight αB, so latent weights move at the pace real weights did in R training;
    without it their steps would shrink by α (about 0.01-0.1 here) and patterns would hardly flip.
    """
    proxy = w if scale is None else w / scale.detach().view(-1, *([1] * (w.dim() - 1)))
    return proxy + (sign(w) - proxy).detach()


def quantization_error(w: torch.Tensor) -> float:
    """Averaged quantization error of a layer: mean over filters of mean((W − αB)²).

    The poster's exact normalisation is not stated; this is the per-weight squared error of
    the least-squares binarization, averaged over every filter of the layer.
    """
    b, a = binarize_alpha(w)
    err = (w - a.view(-1, *([1] * (w.dim() - 1))) * b).pow(2).flatten(1).mean(dim=1)
    return float(err.mean())


def relative_quantization_error(w: torch.Tensor) -> float:
    """Share of each filter's energy the least-squares binarization misses,
    ||W − αB||² / ||W||² = 1 − mean|W|² / mean(W²), averaged over the layer's filters.

    Unlike ``quantization_error`` it does not scale with the weights, so filters trained for
    different lengths or weight decays compare: Gaussian weights give 1 − 2/π ≈ 0.363, weights of
    one magnitude 0; heavier tails (a few large weights per filter) give more.
    """
    f = w.detach().flatten(1)
    energy = f.pow(2).mean(dim=1)
    rel = 1 - f.abs().mean(dim=1).pow(2) / energy.clamp_min(torch.finfo(f.dtype).tiny)
    return float(torch.where(energy > 0, rel, torch.zeros_like(rel)).mean())


def int8_scale(w: torch.Tensor) -> torch.Tensor:
    """Symmetric per-output-channel scale max|W|/127 (1.0 for an all-zero channel)."""
    m = w.detach().abs().flatten(1).amax(dim=1)
    return torch.where(m > 0, m / INT8_MAX, torch.ones_like(m))


def quantize_int8(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(q int8 with w's shape, scale f32 [O]) with w ≈ q · scale[o]."""
    s = int8_scale(w)
    q = torch.clamp(torch.round(w / s.view(-1, *([1] * (w.dim() - 1)))), -INT8_MAX, INT8_MAX)
    return q.to(torch.int8), s


def fake_quant_int8(w: torch.Tensor) -> torch.Tensor:
    """The real-valued weight the int8 encoding will reproduce."""
    q, s = quantize_int8(w)
    return q.to(w.dtype) * s.view(-1, *([1] * (w.dim() - 1)))


KEPT_REAL_ROLES = ("stem", "projection")


class PatternConv2d(nn.Conv2d):
    """A Conv2d whose weight can be swapped for a frozen ±1 pattern times a per-filter scale.

    ``role`` says what the convolution is for, so binarization policies can pick layers:
    ``stem`` (first conv: kept real, as the authors did), ``projection`` (a ResNet shortcut
    projection: also kept real, as the authors did), ``pattern`` (the k×k branch of a
    pattern residual block), ``conv`` (other k×k convolutions), ``pointwise`` (1×1).
    """

    def __init__(self, *args, role: str = "conv", **kwargs):
        super().__init__(*args, **kwargs)
        self.role = role
        self.register_buffer("pattern", None)
        self.alpha: nn.Parameter | None = None
        self.learn_pattern = False  # ``ste``: pattern = sign(latent weight), refreshed every use

    @property
    def binarized(self) -> bool:
        return self.pattern is not None

    def binarize(self, method: str = "alpha", offset: float = 0.09) -> None:
        """Freeze the pattern; α trains for ``alpha``, stays fixed for ``offset`` (lr 0 as in the repo).

        ``ste``: α trains and the pattern follows the signs of the still-trainable real weight.
        """
        if method not in ("alpha", "offset", "ste"):
            raise ValueError(f"unknown binarization method {method!r}")
        # An already-binarized layer (refining a B checkpoint) keeps its pattern and trained α;
        # only the mode changes. Recomputing α = mean|W| would undo the refinement.
        if not self.binarized:
            w = self.weight.detach()
            b, a = binarize_offset(w, offset) if method == "offset" else binarize_alpha(w)
            self.pattern = b.clone()
            self.alpha = nn.Parameter(a.clone())
        self.alpha.requires_grad_(method != "offset")
        self.learn_pattern = method == "ste"
        self.weight.requires_grad_(self.learn_pattern)

    def effective_weight(self) -> torch.Tensor:
        if self.pattern is None:
            return self.weight
        if self.learn_pattern:
            b = ste_sign(self.weight, self.alpha)
            with torch.no_grad():
                self.pattern.copy_(b)
            return self.alpha.view(-1, 1, 1, 1) * b
        return self.alpha.view(-1, 1, 1, 1) * self.pattern

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        # The stored pattern must be the signs of the weight as saved, not as last used.
        if self.learn_pattern:
            with torch.no_grad():
                self.pattern.copy_(sign(self.weight))
        super()._save_to_state_dict(destination, prefix, keep_vars)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.effective_weight(), self.bias, self.stride, self.padding,
                        self.dilation, self.groups)


def binarizable(model: nn.Module, policy: str = "all") -> list[tuple[str, PatternConv2d]]:
    """The convolutions a policy binarizes.

    ``all``: every k×k conv with k > 1 except the stem and ResNet projections (the paper's
    rule plus the authors' practice of keeping those real). ``prb``: only the k×k branches of pattern
    residual blocks.
    """
    out = []
    for name, m in model.named_modules():
        if not isinstance(m, PatternConv2d) or max(m.kernel_size) <= 1:
            continue
        if policy == "all" and m.role not in KEPT_REAL_ROLES:
            out.append((name, m))
        elif policy == "prb" and m.role == "pattern":
            out.append((name, m))
        elif policy not in ("all", "prb"):
            raise ValueError(f"unknown binarization policy {policy!r}")
    return out


def binarize_model(model: nn.Module, method: str = "alpha", offset: float = 0.09,
                   policy: str = "all") -> list[str]:
    """Binarize in place; returns the names of the binarized layers."""
    names = []
    for name, m in binarizable(model, policy):
        m.binarize(method, offset)
        names.append(name)
    return names


def prepare_state_for(model: nn.Module, state: dict) -> None:
    """Before loading a checkpoint of a binarized model: create the pattern/alpha slots it holds."""
    for name, m in model.named_modules():
        if isinstance(m, PatternConv2d) and f"{name}.pattern" in state and not m.binarized:
            m.pattern = torch.empty_like(m.weight)
            m.alpha = nn.Parameter(torch.empty(m.out_channels),
                                   requires_grad=bool(state.get(f"{name}.alpha_trainable", True)))
            m.weight.requires_grad_(False)
