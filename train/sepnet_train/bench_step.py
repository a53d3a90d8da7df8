"""Time one training step on this machine, float32 against bfloat16 autocast, in one process.

Whether ``train.py --amp`` pays depends on the CPU: with native bfloat16 (AVX512-BF16, AMX) it
was 1.4x faster per epoch on ResNet-20; without it autocast falls back to slow conversions. The
two are measured here in interleaved rounds, so the ratio is a same-run ratio, beside the cost of
a distillation teacher's forward pass (``--teacher``), which ``train.py --teacher`` adds to
every step, and with ``--compile-teacher`` that forward pass compiled (``train.py
--compile-teachers``)::

    python -m sepnet_train.bench_step --model resnet20_proj3 --teacher sepnet_cifar

Weights are untrained and the batch is random: only the time matters, and a step's time does not
depend on the values.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torch import nn

from .models import create_model
from .train import param_groups


def get_args_parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="resnet20_proj3")
    p.add_argument("--teacher", default=None, help="also time this model's forward pass (no grad)")
    p.add_argument("--compile-teacher", action="store_true",
                   help="also time the teacher under torch.compile, in bfloat16 autocast")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=2, help="untimed steps of each kind first")
    p.add_argument("--rounds", type=int, default=10, help="timed steps of each kind, interleaved")
    p.add_argument("--json-out", default=None)
    return p


def _train_step(model, optimizer, x, y, amp):
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
        loss = nn.functional.cross_entropy(model(x), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


@torch.no_grad()
def _forward(model, x, amp):
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
        model(x)


def main(argv=None) -> dict:
    args = get_args_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(args.batch_size, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (args.batch_size,))
    student = create_model(args.model, num_classes=10).to(memory_format=torch.channels_last)
    student.train()
    optimizer = torch.optim.SGD(param_groups(student, 5e-4), lr=0.01, momentum=0.9)
    kinds = {"step_fp32": lambda: _train_step(student, optimizer, x, y, False),
             "step_bf16": lambda: _train_step(student, optimizer, x, y, True)}
    if args.teacher:
        teacher = create_model(args.teacher, num_classes=10)
        teacher = teacher.to(memory_format=torch.channels_last).eval().requires_grad_(False)
        kinds["teacher_fp32"] = lambda: _forward(teacher, x, False)
        kinds["teacher_bf16"] = lambda: _forward(teacher, x, True)
        if args.compile_teacher:  # compiled on its first (warm-up) call, untimed
            compiled = torch.compile(teacher)
            kinds["teacher_bf16_compiled"] = lambda: _forward(compiled, x, True)
    for fn in kinds.values():
        for _ in range(args.warmup):
            fn()
    times = {k: [] for k in kinds}
    for _ in range(args.rounds):  # interleaved: a slow spell of the machine hits every kind
        for k, fn in kinds.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    out = {"model": args.model, "teacher": args.teacher, "batch_size": args.batch_size,
           "threads": args.threads, "rounds": args.rounds, "torch": torch.__version__,
           "cpu_capability": torch.backends.cpu.get_cpu_capability(),
           "median_seconds": {k: round(v, 6) for k, v in med.items()},
           "bf16_over_fp32_step": round(med["step_bf16"] / med["step_fp32"], 3)}
    if args.teacher:
        out["teacher_fp32_over_step_fp32"] = round(med["teacher_fp32"] / med["step_fp32"], 3)
    if args.compile_teacher and args.teacher:
        out["teacher_bf16_over_compiled"] = round(med["teacher_bf16"] / med["teacher_bf16_compiled"], 3)
    print(json.dumps(out, indent=1))
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(out, f, indent=1)
    return out


if __name__ == "__main__":
    main()
