"""How much do batch norm's running statistics alone move a trained model's validation top-1?

Training keeps them as an exponential average (momentum 0.1) over augmented batches, so the
values a checkpoint holds depend on which batches came last. This continues that average from a
checkpoint's own statistics over ``--batches`` more training batches (crop, flip, the run's
Cutout), weights frozen: what more training at learning rate 0 would leave. Repeated with
different batch draws (``--draws``), the spread of the validation top-1 is the part of the
epoch-to-epoch swings that the statistics can explain. A measurement only; nothing ships from it.

    python scripts/bn_ema_noise.py --checkpoint RUN/checkpoint.pth --json-out OUT.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sepnet_train import data as D  # noqa: E402
from sepnet_train.precise_bn import batch_norms, only_batch_norms_training  # noqa: E402
from sepnet_train.train import build_model_from_checkpoint, evaluate, load_checkpoint  # noqa: E402


@torch.no_grad()
def continue_running_stats(model, batches, n_batches: int) -> None:
    """What training's batch norms do to their statistics over ``n_batches`` more batches."""
    with only_batch_norms_training(model):
        for x, _ in itertools.islice(batches, n_batches):
            model(x)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--batches", type=int, default=50, help="more training batches per draw")
    p.add_argument("--draws", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json-out")
    a = p.parse_args()
    a.no_progress = True  # for train.evaluate
    torch.set_num_threads(a.threads)
    ckpt = load_checkpoint(a.checkpoint)
    targs = ckpt["args"]
    images, labels, _, files = D.load_uint8(Path(targs["data_path"]), 32)
    val = D.validation_mask(files, labels, targs.get("val_per_class", 500))
    tr, va = np.flatnonzero(~val), np.flatnonzero(val)
    valid = D.TensorLoader(images[va], labels[va], 500, train=False)
    top1 = lambda m: evaluate(m, torch.nn.CrossEntropyLoss(), valid, a)["val_top1"]  # noqa: E731
    base = build_model_from_checkpoint(ckpt)
    stored = top1(base)
    tops = []
    for draw in range(a.draws):
        model = build_model_from_checkpoint(ckpt).to(memory_format=torch.channels_last)
        batches = D.TensorLoader(images[tr], labels[tr], targs["batch_size"], train=True,
                                 cutout=targs.get("cutout", 0), seed=1000 + draw)
        continue_running_stats(model, batches, a.batches)
        tops.append(top1(model))
        print(f"draw {draw}: {100 * tops[-1]:.2f}%", flush=True)
    out = {"checkpoint": a.checkpoint, "stored_statistics_top1": stored, "batches": a.batches,
           "momentum": batch_norms(base)[0].momentum, "top1": tops,
           "min": min(tops), "max": max(tops), "median": statistics.median(tops)}
    print(json.dumps(out))
    if a.json_out:
        Path(a.json_out).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
