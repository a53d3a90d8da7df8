"""Precise batch norm (``sepnet_train.precise_bn``): the running statistics become the exact
average of the batch statistics a reference computes by hand, nothing but them changes, and the
checkpoint it writes exports to a file whose measured accuracy is the one it recorded."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn as nn
from safetensors import safe_open

from sepnet_train import export, precise_bn
from sepnet_train.train import build_model_from_checkpoint, load_checkpoint

from test_train import folder, run_train  # noqa: F401  (fixture and runner shared)


def test_statistics_are_the_average_over_all_batches():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4), nn.Dropout(0.5),
                          nn.Conv2d(4, 5, 1, bias=False), nn.BatchNorm2d(5, momentum=0.3))
    weights = {k: v.clone() for k, v in model.state_dict().items() if "running" not in k and "num_batches" not in k}
    model.train()  # left as training would: the function must set the modes itself
    batches = [(torch.randn(6, 3, 8, 8) * 2 + 1, torch.zeros(6)) for _ in range(4)]
    assert precise_bn.recompute_bn_stats(model, batches) == 24

    # Reference: each batch through the convs with batch norm normalizing by that batch's own
    # statistics and dropout off; the running values are the plain mean of the per-batch ones.
    conv1, bn1, conv2 = model[0], model[1], model[3]
    stats1, stats2 = [], []
    with torch.no_grad():
        for x, _ in batches:
            h = conv1(x)
            m, v = h.mean((0, 2, 3)), h.transpose(0, 1).flatten(1).var(1)
            stats1.append((m, v))
            h = (h - m.view(1, -1, 1, 1)) / torch.sqrt(
                h.var((0, 2, 3), unbiased=False).view(1, -1, 1, 1) + bn1.eps)
            h = h * bn1.weight.view(1, -1, 1, 1) + bn1.bias.view(1, -1, 1, 1)
            h = conv2(h)
            stats2.append((h.mean((0, 2, 3)), h.transpose(0, 1).flatten(1).var(1)))
    for bn, stats in ((model[1], stats1), (model[4], stats2)):
        assert torch.allclose(bn.running_mean, torch.stack([m for m, _ in stats]).mean(0), atol=1e-5)
        assert torch.allclose(bn.running_var, torch.stack([v for _, v in stats]).mean(0), atol=1e-4)
        assert int(bn.num_batches_tracked) == 4
    assert (model[1].momentum, model[4].momentum) == (0.1, 0.3), "momenta must be restored"
    assert not any(m.training for m in model.modules()), "left in evaluation mode"
    for k, v in weights.items():
        assert torch.equal(model.state_dict()[k], v), f"{k} changed"


def test_refuses_what_it_cannot_estimate():
    with pytest.raises(ValueError, match="no batch norm"):
        precise_bn.recompute_bn_stats(nn.Sequential(nn.Conv2d(3, 3, 1)), [])
    with pytest.raises(ValueError, match="no batches"):
        precise_bn.recompute_bn_stats(nn.Sequential(nn.BatchNorm2d(3)), [])


@pytest.mark.parametrize("augment", ["train", "none"])
def test_estimation_batches_mix_the_classes(augment):
    # A folder lists its images class by class; one-class batches would bias every statistic.
    labels = np.repeat(np.arange(10), 50)
    images = np.arange(500, dtype=np.uint8).reshape(500, 1, 1, 1).repeat(3, 3)
    batches = list(precise_bn.estimation_batches(images, labels, 64, augment, cutout=4))
    assert sum(len(y) for _, y in batches) == 500
    seen = torch.cat([y for _, y in batches])
    assert sorted(seen.tolist()) == sorted(labels.tolist()), "each image exactly once"
    assert all(len(set(y.tolist())) >= 6 for _, y in batches[:-1])
    again = list(precise_bn.estimation_batches(images, labels, 64, augment, cutout=4))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(batches, again)), "deterministic"
    with pytest.raises(ValueError, match="augment"):
        precise_bn.estimation_batches(images, labels, 64, "cutout")


@pytest.mark.parametrize("binarize", ["none", "ste"])
def test_checkpoint_exports_with_the_accuracy_it_recorded(folder, tmp_path, binarize):  # noqa: F811
    src = tmp_path / "r"
    run_train(folder, src, "--epochs", "1", "--cutout", "16")
    if binarize != "none":
        b = tmp_path / "b"
        run_train(folder, b, "--epochs", "1", "--finetune-from", str(src / "checkpoint.pth"),
                  "--binarize", binarize, "--cutout", "16")
        src = b
    out = tmp_path / "pbn"
    info = precise_bn.main(precise_bn.get_args_parser().parse_args(
        ["--checkpoint", str(src / "checkpoint.pth"), "--output-dir", str(out), "--threads", "1",
         "--no-progress"]))
    # 80 images, 2 per class held out; the training run's Cutout, as the default augmentation.
    assert (info["images"], info["batch_size"], info["cutout"]) == (60, 16, 16)
    assert json.loads((out / "precise_bn.json").read_text()) == info

    before, after = load_checkpoint(src / "checkpoint.pth"), load_checkpoint(out / "checkpoint.pth")
    assert after["extra"]["precise_bn"] == info and "optimizer" not in after
    assert after["accuracy"]["top1"] == info["val_top1_after"]
    changed = {k for k, v in after["model"].items() if not torch.equal(v, before["model"][k])}
    assert changed and all(".running_" in k or k.endswith("num_batches_tracked") for k in changed)
    build_model_from_checkpoint(after)  # loads as any checkpoint does

    # The exported file, read back by the PyTorch reader, scores what precise_bn measured.
    variant = "R" if binarize == "none" else "B"
    f = tmp_path / f"pbn-{variant}.sepnet"
    summary = export.main(["--checkpoint", str(out / "checkpoint.pth"), "--variant", variant,
                           "--out", str(f), "--evaluate", "--data-path", str(folder),
                           "--val-per-class", "2"])
    assert summary["accuracy"]["top1"] == pytest.approx(info["val_top1_after"], abs=1e-9)
    with safe_open(str(f), "np") as st:
        provenance = json.loads(st.metadata()["sepnet.provenance"])
    assert provenance["precise_bn"] == {"images": 60, "batch_size": 16, "augmentation": "train",
                                        "cutout": 16}
