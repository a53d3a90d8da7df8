"""Train, pattern-binarize and fine-tune models (the shape of torchvision's classification reference).

Stages of the paper's procedure (``shared/paper/NOTES.md`` section 1), each a run of this script:

  R   python -m sepnet_train.train --model sepnet_cifar --epochs 120 --output-dir RUN_R
  B   python -m sepnet_train.train --model sepnet_cifar --finetune-from RUN_R/checkpoint.pth \
          --binarize alpha --epochs 30 --lr 0.01 --output-dir RUN_B

The B stage evaluates the model right after binarization (recorded as ``acc_after_binarization``)
and then fine-tunes with the ±1 patterns frozen while α, 1×1 weights and batch norm train
(with ``--binarize offset`` α is frozen too, as in the authors' repository). BQ needs no training:
``sepnet_train.export`` quantizes the folded weights and ``sepnet_train.evaluate`` measures the
converted file.

Runs on CPU (channels_last, ``--threads``) or GPU unchanged, and distributed with
``torchrun --nproc_per_node=N -m sepnet_train.train ...`` (gloo on CPU, nccl on GPU).
``--data-path`` takes an ImageFolder or a ``.npz`` pack of one (``data.pack_jpegs``);
``--dataset imagenet`` expects ``train/`` and ``val/`` in it. ``--deadline`` fits a fresh run
into a time slot (a lent GPU's minutes): after epochs 1 and 4 it shortens ``--epochs`` to what
fits.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
from torch.optim.swa_utils import AveragedModel, update_bn
from tqdm import tqdm

from . import data as D
from .models import create_model, get_spec
from .quant import binarize_model, prepare_state_for


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser(description="sepnet training", add_help=add_help)
    p.add_argument("--model", default="sepnet_cifar")
    p.add_argument("--dataset", default=None, choices=[None, "cifar10", "imagenet"],
                   help="default: the model's registry dataset")
    p.add_argument("--data-path", default=str(D.DEFAULT_CIFAR_TRAIN))
    p.add_argument("--val-per-class", type=int, default=500)
    p.add_argument("--limit-train", type=int, default=None, help="use only N training images (tests)")
    p.add_argument("--limit-val", type=int, default=None)
    p.add_argument("--epochs", type=int, default=120)
    p.add_argument("--batch-size", type=int, default=128, help="per process")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--wd", type=float, default=5e-4, help="on conv/linear weights only")
    p.add_argument("--nesterov", action="store_true", default=True)
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--cutout", type=int, default=0,
                   help="side of a random square zeroed in each training image (CIFAR; 0 = off)")
    p.add_argument("--lr-schedule", default="cosine", choices=["cosine", "step", "constant"])
    p.add_argument("--lr-steps", type=float, nargs="*", default=[0.6, 0.8],
                   help="step schedule: fractions of training where lr drops 10x")
    p.add_argument("--warmup-epochs", type=float, default=1.0)
    p.add_argument("--swa", action="store_true",
                   help="stochastic weight averaging: average the weights at every epoch's end, "
                        "re-estimate batch norm, and evaluate/save the average (use with a "
                        "constant --lr-schedule, from a trained --finetune-from)")
    p.add_argument("--swa-bn-batches", type=int, default=None,
                   help="training batches for the averaged model's batch-norm statistics (all)")
    p.add_argument("--finetune-from", default=None, help="checkpoint to start the weights from")
    p.add_argument("--teacher", default=None, nargs="+",
                   help="checkpoint(s) of the teacher (e.g. the R model) to distill from while "
                        "training; several form an ensemble whose logits are averaged")
    p.add_argument("--distill-weight", type=float, default=0.9,
                   help="share of the loss that matches the teacher (the rest: the labels)")
    p.add_argument("--distill-temperature", type=float, default=4.0)
    p.add_argument("--compile-teachers", action="store_true",
                   help="torch.compile the teachers (inference only: the same logits up to "
                        "rounding); about 10-40 s a teacher at each start, then 1.7x faster a "
                        "sepnet_cifar teacher on a 2-core AMX Xeon (docs/RESULTS.md)")
    p.add_argument("--binarize", default="none", choices=["none", "alpha", "offset", "ste"],
                   help="alpha: the paper (patterns frozen); offset: the authors' repository; "
                        "ste: ours, alpha with patterns learned through a straight-through estimator")
    p.add_argument("--offset", type=float, default=0.09)
    p.add_argument("--policy", default="all", choices=["all", "prb"])
    p.add_argument("--output-dir", default=str(Path.home() / "sepnet-runs" / "run"))
    p.add_argument("--resume", action="store_true", help="continue from OUTPUT_DIR/checkpoint.pth")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--workers", type=int, default=4, help="DataLoader workers (ImageNet)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--amp", action="store_true",
                   help="train in bfloat16 autocast (weights, optimizer and evaluation stay float32; "
                        "CPU or CUDA); on CPUs measure it first (python -m sepnet_train.bench_step): "
                        "a ResNet-20 step was 1.31x slower on an AVX512-BF16 Xeon (docs/RESULTS.md)")
    p.add_argument("--eval-only", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--deadline", type=float, default=None,
                   help="unix time a fresh run must end by: after epoch 0, --epochs is cut to "
                        "what fits at epoch 0's pace (the cosine then anneals over that many)")
    return p


# ---------------------------------------------------------------------------------- helpers

def is_main():
    return not dist.is_initialized() or dist.get_rank() == 0


def setup_distributed(args):
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        backend = "nccl" if args.device.startswith("cuda") else "gloo"
        dist.init_process_group(backend)
        args.rank, args.world_size = dist.get_rank(), dist.get_world_size()
        if args.device.startswith("cuda"):
            local = int(os.environ.get("LOCAL_RANK", 0))
            torch.cuda.set_device(local)
            args.device = f"cuda:{local}"
    else:
        args.rank, args.world_size = 0, 1


def lr_at(args, epoch_float):
    if epoch_float < args.warmup_epochs:
        return args.lr * min(1.0, (epoch_float + 1e-3) / args.warmup_epochs)
    if args.lr_schedule == "constant":
        return args.lr
    if args.lr_schedule == "cosine":
        t = (epoch_float - args.warmup_epochs) / max(1e-9, args.epochs - args.warmup_epochs)
        return 0.5 * args.lr * (1 + math.cos(math.pi * min(1.0, t)))
    drops = sum(epoch_float >= f * args.epochs for f in args.lr_steps)
    return args.lr * (0.1 ** drops)


def param_groups(model, wd):
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (decay if p.ndim > 1 else no_decay).append(p)  # BN, biases and α get no weight decay
    return [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]


def accuracy(output, target, topk=(1, 5)):
    k = min(max(topk), output.shape[1])
    pred = output.topk(k, 1).indices
    correct = pred.eq(target.view(-1, 1))
    return [correct[:, :min(t, k)].any(1).sum().item() for t in topk]


def build_data(args, spec):
    dataset = args.dataset or spec.dataset
    if dataset == "cifar10":
        images, labels, classes, files = D.load_uint8(Path(args.data_path), 32)
        val = D.validation_mask(files, labels, args.val_per_class)
        tr_idx, va_idx = np.flatnonzero(~val), np.flatnonzero(val)
        if args.limit_train:
            tr_idx = tr_idx[np.random.RandomState(0).permutation(len(tr_idx))[:args.limit_train]]
        if args.limit_val:
            va_idx = va_idx[np.random.RandomState(1).permutation(len(va_idx))[:args.limit_val]]
        common = dict(batch_size=args.batch_size, rank=args.rank, world_size=args.world_size,
                      device=args.device, seed=args.seed)
        train = D.TensorLoader(images[tr_idx], labels[tr_idx], train=True, cutout=args.cutout,
                               **common)
        valid = D.TensorLoader(images[va_idx], labels[va_idx], train=False, **common)
        return train, valid, classes
    # ImageNet-style folder: DataLoader over JPEGs with the standard 224 recipe (no Cutout).
    if args.cutout:
        raise SystemExit("--cutout is for CIFAR-10 (the in-memory loader); the ImageNet recipe "
                         "is random-resized crop + flip")
    import torchvision.transforms as T
    from torchvision.datasets import ImageFolder
    from torch.utils.data import DataLoader, DistributedSampler, Subset
    norm = T.Normalize(D.IMAGENET_MEAN, D.IMAGENET_STD)
    root = Path(args.data_path)
    for part in ("train", "val"):
        if not (root / part).is_dir():
            raise SystemExit(f"--dataset imagenet expects {root / part}/<class>/*.JPEG")
    tr = ImageFolder(root / "train", T.Compose([
        T.RandomResizedCrop(spec.input_size), T.RandomHorizontalFlip(), T.ToTensor(), norm]))
    va = ImageFolder(root / "val", T.Compose([
        T.Resize(int(spec.input_size / 0.875)), T.CenterCrop(spec.input_size), T.ToTensor(), norm]))
    if tr.classes != va.classes:
        raise SystemExit(f"{root}/train and {root}/val have different class folders")
    classes = tr.classes
    # The same seeded subsets as the CIFAR-10 path (smoke tests of the recipe).
    if args.limit_train:
        tr = Subset(tr, np.random.RandomState(0).permutation(len(tr))[:args.limit_train].tolist())
    if args.limit_val:
        va = Subset(va, np.random.RandomState(1).permutation(len(va))[:args.limit_val].tolist())
    # DistributedSampler pads the validation shards to equal length, as TensorLoader does.
    samplers = [DistributedSampler(tr, seed=args.seed), DistributedSampler(va, shuffle=False)] \
        if args.world_size > 1 else [None, None]
    pin = args.device.startswith("cuda")
    g = torch.Generator().manual_seed(args.seed + args.rank)
    train = DataLoader(tr, args.batch_size, shuffle=samplers[0] is None, sampler=samplers[0],
                       num_workers=args.workers, pin_memory=pin, drop_last=True, generator=g,
                       persistent_workers=args.workers > 0)
    valid = DataLoader(va, args.batch_size, sampler=samplers[1], num_workers=args.workers,
                       pin_memory=pin)
    return (D.DeviceLoader(train, args.device, samplers[0]),
            D.DeviceLoader(valid, args.device, samplers[1]), classes)


# ---------------------------------------------------------------------------------- loops

def distillation_terms(out, target, teacher_logits, criterion, weight, temperature):
    """(1 − w)·criterion(out, target) + w·T²·KL(softmax(teacher/T) ‖ softmax(out/T)) in the
    inputs' own precision: Hinton et al.'s knowledge distillation; T² keeps the soft term's
    gradients at the scale of the hard one's. Train with ``distillation_loss``."""
    t = temperature
    soft = nn.functional.kl_div(nn.functional.log_softmax(out / t, dim=1),
                                nn.functional.log_softmax(teacher_logits / t, dim=1),
                                reduction="batchmean", log_target=True) * (t * t)
    return (1 - weight) * criterion(out, target) + weight * soft


def distillation_loss(out, target, teacher_logits, criterion, weight, temperature):
    """``distillation_terms`` in float32 at least, whatever the inputs' dtype or the caller's
    autocast: in bfloat16 (8 bits of mantissa) the KL between two softened distributions that
    nearly agree is mostly rounding error, and its gradient steered the distilled ResNet-20 R
    away from its teachers (docs/RESULTS.md, "Session 34")."""
    dtype = torch.promote_types(out.dtype, torch.float32)
    return distillation_terms(out.to(dtype), target, teacher_logits.to(dtype), criterion, weight,
                              temperature)


class TeacherEnsemble(nn.Module):
    """Teachers whose logits are averaged: softmax of the mean logit at temperature T is the
    normalized geometric mean of the teachers' softened distributions. One teacher passes
    through unchanged."""

    def __init__(self, teachers):
        super().__init__()
        self.teachers = nn.ModuleList(teachers)

    def forward(self, x):
        return torch.stack([t(x) for t in self.teachers]).mean(0)


def train_one_epoch(model, criterion, optimizer, loader, epoch, args, teacher=None):
    model.train()
    loader.set_epoch(epoch)
    n_batches = len(loader)
    # Sums stay on the device: a .item() per step would stall a GPU's queue every batch.
    tot_loss = torch.zeros((), dtype=torch.float64, device=args.device)
    tot_correct = torch.zeros((), dtype=torch.int64, device=args.device)
    tot_n = 0
    show = is_main() and not args.no_progress
    bar = tqdm(loader, total=n_batches, desc=f"epoch {epoch}", disable=not show, leave=False)
    device_type = "cuda" if args.device.startswith("cuda") else "cpu"
    for i, (x, y) in enumerate(bar):
        lr = lr_at(args, epoch + i / n_batches)
        for g in optimizer.param_groups:
            g["lr"] = lr
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=args.amp):
            out = model(x)
            if teacher is not None:
                with torch.no_grad():
                    t_logits = teacher(x)
        # The networks in bfloat16 under --amp, the loss in float32 (see distillation_loss).
        out = out.float()
        if teacher is None:
            loss = criterion(out, y)
        else:
            loss = distillation_loss(out, y, t_logits, criterion, args.distill_weight,
                                     args.distill_temperature)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        tot_loss += loss.detach() * len(y)
        tot_correct += (out.argmax(1) == y).sum()
        tot_n += len(y)
        if show and i % 20 == 0:
            bar.set_postfix(loss=f"{tot_loss.item() / tot_n:.3f}",
                            acc=f"{tot_correct.item() / tot_n:.3f}", lr=f"{lr:.4f}")
    stats = torch.tensor([tot_loss.item(), tot_correct.item(), tot_n], dtype=torch.float64)
    if dist.is_initialized():
        dist.all_reduce(stats)
    return {"train_loss": stats[0].item() / stats[2].item(),
            "train_top1": stats[1].item() / stats[2].item()}


@torch.no_grad()
def evaluate(model, criterion, loader, args, desc="val"):
    model.eval()
    stats = torch.zeros(4, dtype=torch.float64)  # loss, top1, top5, n
    for x, y in tqdm(loader, desc=desc, disable=not is_main() or args.no_progress, leave=False):
        out = model(x)
        c1, c5 = accuracy(out, y)
        stats += torch.tensor([criterion(out, y).item() * len(y), c1, c5, len(y)], dtype=torch.float64)
    if dist.is_initialized():
        dist.all_reduce(stats)
    n = stats[3].item()
    return {"val_loss": stats[0].item() / n, "val_top1": stats[1].item() / n,
            "val_top5": stats[2].item() / n, "val_n": int(n)}


def swa_update(swa_model, model, loader, epoch, n_batches=None):
    """Fold ``model`` into the running average, then re-estimate the average's batch-norm
    statistics on (augmented) training batches: the running statistics of the networks being
    averaged do not describe the averaged one."""
    swa_model.update_parameters(model)
    loader.set_epoch(epoch)
    update_bn(itertools.islice(loader, n_batches) if n_batches else loader, swa_model.module)


def save_curves(history, out_dir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    ep = [h["epoch"] for h in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    a.plot(ep, [h["train_loss"] for h in history], label="train")
    a.plot(ep, [h["val_loss"] for h in history], label="validation")
    a.set_xlabel("epoch"), a.set_ylabel("loss"), a.legend(), a.grid(alpha=0.3)
    b.plot(ep, [100 * h["train_top1"] for h in history], label="train top-1")
    b.plot(ep, [100 * h["val_top1"] for h in history], label="validation top-1")
    b.set_xlabel("epoch"), b.set_ylabel("accuracy (%)"), b.legend(), b.grid(alpha=0.3)
    fig.suptitle(Path(out_dir).name)
    fig.tight_layout()
    fig.savefig(Path(out_dir) / "curves.png", dpi=110)
    plt.close(fig)


def write_logs(history, out_dir):
    out_dir = Path(out_dir)
    (out_dir / "log.json").write_text(json.dumps(history, indent=1))
    with open(out_dir / "log.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(history[0].keys()))
        w.writeheader()
        w.writerows(history)


def load_checkpoint(path, map_location="cpu"):
    return torch.load(path, map_location=map_location, weights_only=False)


def unfinished_run(ckpt):
    """``(epochs done, epochs planned)`` for a checkpoint of a run stopped before its last
    epoch, else None (finished runs, and files without a plan: a recovered R has none)."""
    planned = (ckpt.get("args") or {}).get("epochs")
    done = ckpt.get("epoch", -1) + 1
    return (done, planned) if planned and done < planned else None


def build_model_from_checkpoint(ckpt, **overrides):
    """Recreate (and binarize, if the checkpoint is binarized) the model a checkpoint holds."""
    a = dict(ckpt["args"], **overrides)
    classes = ckpt.get("classes")  # the training folders' classes (an ImageNet-style folder's N)
    model = create_model(a["model"], num_classes=len(classes) if classes else None)
    if a.get("binarize", "none") != "none":
        binarize_model(model, a["binarize"], a.get("offset", 0.09), a.get("policy", "all"))
    prepare_state_for(model, ckpt["model"])
    model.load_state_dict(ckpt["model"])
    return model


def fit_epochs(args, extra, done, epoch_seconds, margin=0.92):
    """Cut ``args.epochs`` to what fits before ``args.deadline``, ``done`` epochs in.

    Called after epoch 1, and again after epoch 4 (it only ever shortens). Not after epoch 0:
    its time includes cudnn's algorithm search for every new shape (the last, smaller batch;
    evaluation), which made it about twice the steady pace on a GPU.
    The learning rate so far (warm-up, the cosine's flat start) hardly depends on the total, so
    the run is the run it would have been with ``--epochs`` set so from the start.
    """
    left = args.deadline - time.time()
    fit = max(done, done + int(margin * left / max(epoch_seconds, 1e-3)))
    if dist.is_initialized():  # every rank must run the same number of epochs: rank 0's
        t = torch.tensor([fit], device=args.device if args.device.startswith("cuda") else "cpu")
        dist.broadcast(t, 0)
        fit = int(t.item())
    if fit < args.epochs:
        if is_main():
            print(f"deadline: {left:.0f} s left at {epoch_seconds:.1f} s/epoch: "
                  f"{fit} epochs instead of {args.epochs}", flush=True)
        extra.setdefault("epochs_requested", args.epochs)
        args.epochs = fit


# ---------------------------------------------------------------------------------- main

def main(args):
    torch.set_num_threads(args.threads)
    setup_distributed(args)
    if args.device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True  # fixed shapes: pick the fastest conv algorithms once
    torch.manual_seed(args.seed + args.rank)
    out_dir = Path(args.output_dir)
    if is_main():
        out_dir.mkdir(parents=True, exist_ok=True)
    spec = get_spec(args.model)
    train_loader, val_loader, classes = build_data(args, spec)
    model = create_model(args.model, num_classes=len(classes))
    criterion = nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)

    ckpt_path = out_dir / "checkpoint.pth"
    resume = args.resume and ckpt_path.exists()
    history, start_epoch, extra = [], 0, {}
    if args.finetune_from and not resume:
        src = load_checkpoint(args.finetune_from)
        src_model = build_model_from_checkpoint(src)
        prepare_state_for(model, src_model.state_dict())  # a binarized source (refining a B)
        model.load_state_dict(src_model.state_dict())
        extra["finetuned_from"] = str(args.finetune_from)
        extra["source_accuracy"] = src.get("accuracy")
    if args.binarize != "none":
        extra["binarized_layers"] = binarize_model(model, args.binarize, args.offset, args.policy)
    model = model.to(args.device).to(memory_format=torch.channels_last)
    if args.binarize != "none" and not resume:
        # The paper's "right after binarization" number, before any fine-tuning.
        extra["acc_after_binarization"] = evaluate(model, criterion, val_loader, args, "binarized")
        if is_main():
            print(f"right after binarization: {json.dumps(extra['acc_after_binarization'])}")

    teacher = None
    if args.teacher:
        srcs = [load_checkpoint(t) for t in args.teacher]
        # A teacher read mid-run would silently teach from a half-trained network, and a resumed
        # student would then be taught by a different teacher than the one it started with.
        for path, src in zip(args.teacher, srcs):
            if (left := unfinished_run(src)) is not None:
                raise SystemExit(f"--teacher {path} is at epoch {left[0]} of {left[1]}: "
                                 "a teacher must be a finished run")
        teacher = TeacherEnsemble([build_model_from_checkpoint(s) for s in srcs]).to(args.device)
        teacher = teacher.to(memory_format=torch.channels_last).eval().requires_grad_(False)
        if args.compile_teachers:
            # Teachers only ever run forward, so compiling them cannot change what is learned
            # beyond rounding; the student stays eager (its backward is where a bug would hide).
            teacher = torch.compile(teacher)
        info = {"weight": args.distill_weight, "temperature": args.distill_temperature}
        if len(srcs) == 1:  # the layout of the single-teacher runs already logged
            info.update(checkpoint=str(args.teacher[0]), accuracy=srcs[0].get("accuracy"))
        else:
            info.update(checkpoints=[str(t) for t in args.teacher],
                        accuracies=[s.get("accuracy") for s in srcs])
            # How good the averaged teacher is: what the student can approach (--eval-only
            # prints it below, so it is not evaluated twice).
            if not resume and not args.eval_only:
                info["ensemble"] = evaluate(teacher, criterion, val_loader, args, "teachers")
                if is_main():
                    print(f"teacher ensemble: {json.dumps(info['ensemble'])}")
        extra.setdefault("teacher", info)

    optimizer = torch.optim.SGD(param_groups(model, args.wd), lr=args.lr, momentum=args.momentum,
                                nesterov=args.nesterov)
    if resume:
        ckpt = load_checkpoint(ckpt_path, args.device)
        # An SWA checkpoint's "model" is the average (what is exported); the weights training
        # goes on from are "live_model".
        live = ckpt.get("live_model", ckpt["model"])
        if "live_model" in ckpt and not args.swa:
            raise SystemExit(f"{ckpt_path} is a weight-averaging run: resume it with --swa")
        prepare_state_for(model, live)
        model.load_state_dict(live)
        optimizer.load_state_dict(ckpt["optimizer"])
        history, start_epoch, extra = ckpt["history"], ckpt["epoch"] + 1, ckpt.get("extra", {})
        if is_main():
            print(f"resumed from {ckpt_path} at epoch {start_epoch}")

    ddp_model = model
    if args.world_size > 1:
        ddp_model = nn.parallel.DistributedDataParallel(
            model, device_ids=[args.device] if args.device.startswith("cuda") else None)

    swa_model = AveragedModel(model) if args.swa else None  # after the resume: same layers
    if swa_model is not None and resume:
        swa_model.module.load_state_dict(ckpt["model"])
        swa_model.n_averaged.fill_(extra["swa_averaged"])
    kept = model if swa_model is None else swa_model.module  # evaluated, saved and exported
    if args.eval_only:
        print(json.dumps(evaluate(kept, criterion, val_loader, args)))
        if teacher is not None:
            print(json.dumps({"teacher": evaluate(teacher, criterion, val_loader, args)}))
        return

    epoch, last_plot = start_epoch, 0.0
    while epoch < args.epochs:
        t0 = time.time()
        tr = train_one_epoch(ddp_model, criterion, optimizer, train_loader, epoch, args, teacher)
        live = {}
        if swa_model is not None:
            live = {"live_" + k: v for k, v in evaluate(model, criterion, val_loader, args).items()
                    if k != "val_n"}
            swa_update(swa_model, model, train_loader, epoch, args.swa_bn_batches)
            extra["swa_averaged"] = int(swa_model.n_averaged)
        va = evaluate(kept, criterion, val_loader, args)
        row = {"epoch": epoch, "lr": lr_at(args, epoch + 1 - 1e-9), **tr, **live, **va,
               "seconds": round(time.time() - t0, 1)}
        history.append(row)
        # Judged again at epoch 4: runs sharing a GPU slow each other as the others warm up.
        if args.deadline and epoch in (min(1, args.epochs - 1), 4):
            fit_epochs(args, extra, epoch + 1, time.time() - t0)
        args_dict = {k: v for k, v in vars(args).items() if k not in ("rank", "world_size")}
        if is_main():
            print(json.dumps(row), flush=True)
            ckpt = {"model": kept.state_dict(), "optimizer": optimizer.state_dict(),
                    "epoch": epoch, "args": args_dict, "history": history, "extra": extra,
                    "classes": classes,
                    "accuracy": {"split": f"val{args.val_per_class * len(classes)}",
                                 "n": va["val_n"], "top1": va["val_top1"], "top5": va["val_top5"]}}
            if swa_model is not None:
                ckpt["live_model"] = model.state_dict()
            tmp = out_dir / "checkpoint.pth.tmp"
            torch.save(ckpt, tmp)
            os.replace(tmp, ckpt_path)  # atomic: a kill mid-save never corrupts the checkpoint
            write_logs(history, out_dir)
            # A plot costs ~0.2 s: a sizeable share of a GPU epoch, so at most one every 30 s.
            if epoch + 1 >= args.epochs or time.time() - last_plot > 30:
                save_curves(history, out_dir)
                last_plot = time.time()
        epoch += 1
    if dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    main(get_args_parser().parse_args())
