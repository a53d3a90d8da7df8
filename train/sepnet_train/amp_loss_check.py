"""Does the precision of the loss matter? The same distilled checkpoint trained on for a few
hundred steps, on the same batches, with three precisions, then scored on training images.

Written in session 34 for ``resnet20_proj3_r_kd_long``, whose training loss rose while its
learning rate fell (docs/RESULTS.md, "Session 34"). The modes:

* ``fp32``: everything in float32.
* ``bf16-net``: the networks (student and teachers) under bfloat16 autocast, the loss in float32:
  what ``train.py --amp`` does since session 34.
* ``bf16-all``: the loss computed under autocast too, in bfloat16: what ``--amp`` did before.

Each mode starts from the checkpoint's weights and optimizer state, at the learning rate of its
last epoch, and sees the same augmented batches; the probe is 1,000 fixed training images
(unaugmented, eval mode, float32), scored before and after::

    python -m sepnet_train.amp_loss_check CHECKPOINT --steps 300 --json-out ../docs/results/amp_loss_check.json
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import data as D
from .train import (TeacherEnsemble, build_model_from_checkpoint, distillation_loss,
                    distillation_terms, evaluate, load_checkpoint, param_groups)

MODES = ("fp32", "bf16-net", "bf16-all")


def get_args_parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", type=Path, help="a distilled run's checkpoint.pth (its teachers "
                   "are read from the paths its args name)")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    p.add_argument("--probe", type=int, default=1000, help="training images scored before and after")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json-out", type=Path)
    return p


def main(args):
    torch.set_num_threads(args.threads)
    ck = load_checkpoint(args.checkpoint)
    a = ck["args"]
    if not a.get("teacher"):
        raise SystemExit(f"{args.checkpoint} is not a distilled run (no --teacher in its args)")
    images, labels, _, files = D.load_uint8(Path(a["data_path"]), 32)
    train_idx = np.flatnonzero(~D.validation_mask(files, labels, a["val_per_class"]))
    probe_idx = np.random.RandomState(0).permutation(train_idx)[:args.probe]
    common = dict(batch_size=a["batch_size"], rank=0, world_size=1, device="cpu")
    train = D.TensorLoader(images[train_idx], labels[train_idx], train=True, cutout=a["cutout"],
                           seed=a["seed"], **common)
    probe = D.TensorLoader(images[probe_idx], labels[probe_idx], train=False, seed=0, **common)
    teacher = TeacherEnsemble([build_model_from_checkpoint(load_checkpoint(p)) for p in a["teacher"]])
    teacher = teacher.to(memory_format=torch.channels_last).eval().requires_grad_(False)
    criterion = nn.CrossEntropyLoss(label_smoothing=a["label_smoothing"])
    plain = argparse.Namespace(no_progress=True)  # what evaluate() reads of train.py's args

    def probe_eval(model):  # top-1 and plain cross-entropy (no smoothing) on the probe images
        return evaluate(model, nn.CrossEntropyLoss(), probe, plain, "probe")

    lr = ck["history"][-1]["lr"]
    result = {"checkpoint": str(args.checkpoint), "epoch": ck["epoch"], "lr": lr,
              "steps": args.steps, "batch_size": a["batch_size"], "modes": {}}
    for mode in args.modes:
        model = build_model_from_checkpoint(ck)
        model.load_state_dict(ck["model"])
        model = model.to(memory_format=torch.channels_last)
        opt = torch.optim.SGD(param_groups(model, a["wd"]), lr=lr, momentum=a["momentum"],
                              nesterov=a["nesterov"])
        # A copy: load_state_dict keeps the checkpoint's momentum tensors, which step() then
        # updates in place, so the next mode would start from this one's momentum.
        opt.load_state_dict(copy.deepcopy(ck["optimizer"]))
        for g in opt.param_groups:
            g["lr"] = lr
        before = probe_eval(model)
        train.set_epoch(ck["epoch"] + 1)  # the same batches for every mode
        model.train()
        losses, t0 = [], time.time()
        for step, (x, y) in enumerate(train):
            if step == args.steps:
                break
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode != "fp32"):
                out = model(x)
                with torch.no_grad():
                    t_logits = teacher(x)
                if mode == "bf16-all":  # the loss as train.py computed it before session 34
                    loss = distillation_terms(out, y, t_logits, criterion, a["distill_weight"],
                                              a["distill_temperature"])
            if mode != "bf16-all":
                loss = distillation_loss(out, y, t_logits, criterion, a["distill_weight"],
                                         a["distill_temperature"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        after = probe_eval(model)
        row = {"probe_before": before, "probe_after": after, "seconds": round(time.time() - t0, 1),
               "train_loss_first_100": float(np.mean(losses[:100])),
               "train_loss_last_100": float(np.mean(losses[-100:]))}
        result["modes"][mode] = row
        print(mode, json.dumps(row), flush=True)
        if args.json_out:  # after each mode, so an interrupted run keeps what it finished
            args.json_out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main(get_args_parser().parse_args())
