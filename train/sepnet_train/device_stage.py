"""Stage run checkpoints for a lent GPU machine under the 64 MiB that travels with a call.

``python -m sepnet_train.device_stage --out ../.devdata/runs --resume RUN --read RUN...``

A device call carries the working tree and a few ignored folders (``.devdata/``: the deflated data pack,
~15 MB, and these checkpoints). A run being resumed needs its whole checkpoint (optimizer state
included, so momentum carries on); a teacher or a ``--finetune-from`` start is only read for its
weights, so it travels without its optimizer state, about half the bytes. Each file is taken from
``--runs`` (``~/sepnet-runs``) or, where that lacks it, from ``train/snapshots/RUN.pth``; tensors
are moved to the CPU, so a checkpoint saved on the GPU loads here too. On the device,
``cp -r .devdata/runs/. ~/sepnet-runs/`` puts them where the stages look (the same paths as here).
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

SNAPSHOTS = Path(__file__).resolve().parents[1] / "snapshots"


def source(run: str, runs: Path) -> Path:
    for p in (runs / run / "checkpoint.pth", SNAPSHOTS / f"{run}.pth"):
        if p.exists():
            return p
    raise SystemExit(f"device_stage: no checkpoint for {run} in {runs} or {SNAPSHOTS}")


def stage(run: str, runs: Path, out: Path, keep_optimizer: bool) -> int:
    """Writes ``out/run/checkpoint.pth``; returns its size in bytes."""
    ckpt = torch.load(source(run, runs), map_location="cpu", weights_only=False)
    if not keep_optimizer:
        ckpt.pop("optimizer", None)
    dest = out / run / "checkpoint.pth"
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".pth.tmp")
    torch.save(ckpt, tmp)
    os.replace(tmp, dest)
    return dest.stat().st_size


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, required=True, help="e.g. ../.devdata/runs")
    p.add_argument("--runs", type=Path, default=Path.home() / "sepnet-runs")
    p.add_argument("--resume", nargs="*", default=[], help="runs to go on with: whole checkpoints")
    p.add_argument("--read", nargs="*", default=[],
                   help="teachers and starts: weights and metadata, no optimizer state")
    args = p.parse_args(argv)
    total = 0
    for runs, keep in ((args.resume, True), (args.read, False)):
        for run in runs:
            n = stage(run, args.runs, args.out, keep)
            total += n
            print(f"{run}: {n:,} bytes{'' if keep else ' (no optimizer state)'}")
    print(f"staged {total:,} bytes in {args.out}")
    return total


if __name__ == "__main__":
    main()
