"""Is one model file better than another beyond noise? A paired comparison on the same images.

Two models scored on the same 5,000 validation images are not independent samples: most images
both get right or both get wrong, and only the images they disagree on carry information about
which is better. McNemar's exact test uses exactly those: with ``b`` images only the first model
gets right and ``c`` only the second, under "equally good" ``c`` is Binomial(b + c, 1/2). This
is the rule ``docs/RESULTS.md`` ships by: a candidate replaces the shipped file only when it is
better and the two-sided exact p-value is below 0.05, fixed before the candidate finishes.

    python -m sepnet_train.compare ../www/models/sepnet_cifar-r.sepnet CANDIDATE.sepnet \
        [--per-class 500] [--json-out ../docs/results/compare_X.json]

Both files are read by the PyTorch reader (``reference.py``), which ``check_engine`` shows agrees
with the engine image for image in accuracy.
"""

from __future__ import annotations

import argparse
import json
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from . import data as D
from . import reference

SHIP_ALPHA = 0.05  # the significance level of the shipping rule, fixed in session 24


def mcnemar_exact_p(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: P(a count at least as lopsided as min(b, c) of b + c)."""
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be non-negative, got {b}, {c}")
    n, k = b + c, min(b, c)
    if n == 0:
        return 1.0
    # Exact rational arithmetic: b + c is at most a few thousand, so the sum is cheap, and terms
    # too small for a float on their own are not lost before the division.
    tail = Fraction(sum(math.comb(n, i) for i in range(k + 1)), 2 ** n)
    return float(min(Fraction(1), 2 * tail))


def paired_difference(correct_a: np.ndarray, correct_b: np.ndarray) -> dict:
    """Top-1 accuracies, discordant counts and McNemar's test for per-image correctness masks."""
    a, b_ = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    if a.shape != b_.shape or a.ndim != 1 or len(a) == 0:
        raise ValueError(f"need two equal-length, non-empty 1-D masks, got {a.shape} and {b_.shape}")
    n = len(a)
    only_a, only_b = int((a & ~b_).sum()), int((~a & b_).sum())
    diff = (only_b - only_a) / n
    # Standard error of the paired difference in proportions (the discordant pairs' variance).
    se = math.sqrt(max(only_a + only_b - (only_b - only_a) ** 2 / n, 0.0)) / n
    p = mcnemar_exact_p(only_a, only_b)
    return {"n": n, "top1_a": float(a.mean()), "top1_b": float(b_.mean()),
            "only_a_correct": only_a, "only_b_correct": only_b,
            "difference": diff, "difference_se": se,
            "difference_ci95": [diff - 1.96 * se, diff + 1.96 * se],
            "mcnemar_p": p, "b_better_beyond_noise": bool(only_b > only_a and p < SHIP_ALPHA)}


@torch.no_grad()
def correct_mask(ref: reference.RefModel, images: np.ndarray, labels: np.ndarray,
                 batch_size: int = 250) -> np.ndarray:
    """Per-image top-1 correctness of a loaded file, with the file's own preprocessing."""
    out = []
    for x, y in reference.batches_for(ref, images, labels, batch_size):
        out.append((ref(x).argmax(dim=1) == y.to(x.device)).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=bool)


def compare_files(path_a: Path, path_b: Path, data_path: Path, per_class: int = 500) -> dict:
    """The paired comparison of two CIFAR-10 files on the first ``per_class`` validation images
    of each class (the fixed split's ranking, so 500 is the whole split)."""
    images, labels, classes = reference.cifar_val_split(data_path, per_class)
    masks = []
    for path in (path_a, path_b):
        ref = reference.load(path)
        if list(ref.labels) != classes:
            raise SystemExit(f"{Path(path).name}: labels {list(ref.labels)} != folder classes {classes}")
        masks.append(correct_mask(ref, images, labels))
    return {"a": str(path_a), "b": str(path_b), "split": f"val{10 * per_class}",
            "ship_alpha": SHIP_ALPHA, **paired_difference(*masks)}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("a", help="the shipped (reference) .sepnet file")
    p.add_argument("b", help="the candidate .sepnet file")
    p.add_argument("--data-path", default=str(D.DEFAULT_CIFAR_TRAIN))
    p.add_argument("--per-class", type=int, default=500, help="validation images per class")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json-out", help="also write the result as JSON (docs/results/compare_*.json)")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    r = compare_files(Path(a.a), Path(a.b), Path(a.data_path), a.per_class)
    lo, hi = r["difference_ci95"]
    print(f"{r['split']}: A {100 * r['top1_a']:.2f}%  B {100 * r['top1_b']:.2f}%  "
          f"B - A {100 * r['difference']:+.2f} pt (95% CI {100 * lo:+.2f} to {100 * hi:+.2f})")
    print(f"only A right: {r['only_a_correct']}, only B right: {r['only_b_correct']}, "
          f"exact McNemar p = {r['mcnemar_p']:.4g}: B is "
          f"{'' if r['b_better_beyond_noise'] else 'not '}better beyond noise (p < {SHIP_ALPHA})")
    if a.json_out:
        out = dict(r, a=Path(a.a).name, b=Path(a.b).name)  # names, not this machine's paths
        Path(a.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json_out).write_text(json.dumps(out, indent=1) + "\n")
    return r


if __name__ == "__main__":
    main()
