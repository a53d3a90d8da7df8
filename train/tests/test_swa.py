"""Stochastic weight averaging (``train.py --swa``): the saved model is the plain mean of the
weights at each epoch's end with batch norm re-estimated for it, a resumed run averages on exactly
as an uninterrupted one, and a binarized model keeps its frozen patterns through averaging."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from torch.optim.swa_utils import AveragedModel

from sepnet_train import quant
from sepnet_train.train import build_model_from_checkpoint, load_checkpoint, swa_update

from test_train import Batches, folder, run_train  # noqa: F401  (fixture and runner shared)


def test_swa_update_is_the_mean_with_batch_norm_measured_on_it():
    torch.manual_seed(0)
    make = lambda: nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4))
    a, b = make(), make()
    swa = AveragedModel(a)
    batches = Batches([(torch.randn(5, 3, 8, 8), torch.zeros(5)) for _ in range(3)])
    swa_update(swa, a, batches, 0)
    swa_update(swa, b, batches, 1, n_batches=2)
    w = (a[0].weight + b[0].weight) / 2
    assert torch.allclose(swa.module[0].weight, w)
    assert batches.epoch == 1
    # Reference: batch norm's cumulative statistics of the averaged conv over the first 2 batches.
    with torch.no_grad():
        outs = [nn.functional.conv2d(x, w) for x, _ in batches[:2]]
    mean = torch.stack([o.mean((0, 2, 3)) for o in outs]).mean(0)
    var = torch.stack([o.transpose(0, 1).flatten(1).var(1) for o in outs]).mean(0)
    bn = swa.module[1]
    assert torch.allclose(bn.running_mean, mean, atol=1e-5)
    assert torch.allclose(bn.running_var, var, atol=1e-5)
    assert bn.momentum == 0.1, "update_bn must restore the momentum"


def test_swa_run_resumes_like_an_uninterrupted_one(folder, tmp_path):  # noqa: F811
    src = tmp_path / "r"
    run_train(folder, src, "--epochs", "1")
    swa = ("--finetune-from", str(src / "checkpoint.pth"), "--swa", "--lr-schedule", "constant",
           "--lr", "0.05", "--warmup-epochs", "0")
    run_train(folder, tmp_path / "straight", "--epochs", "2", *swa)
    run_train(folder, tmp_path / "split", "--epochs", "1", *swa)
    run_train(folder, tmp_path / "split", "--epochs", "2", "--resume", *swa)
    a = load_checkpoint(tmp_path / "straight" / "checkpoint.pth")
    b = load_checkpoint(tmp_path / "split" / "checkpoint.pth")
    assert a["extra"]["swa_averaged"] == b["extra"]["swa_averaged"] == 2
    for k, v in a["model"].items():
        assert torch.allclose(v.float(), b["model"][k].float(), atol=1e-5), k
    # The saved model is the average, not the weights training goes on from.
    k = "blocks.0.conv1.weight"
    assert not torch.allclose(a["model"][k], a["live_model"][k])
    # Resuming it without --swa would train the live weights and save them over the average.
    with pytest.raises(AssertionError, match="resume it with --swa"):
        run_train(folder, tmp_path / "split", "--epochs", "3", "--resume")
    h = a["history"][-1]
    assert {"val_top1", "live_val_top1"} <= set(h)
    assert a["accuracy"]["top1"] == h["val_top1"]


@pytest.mark.parametrize("method", ["alpha", "ste"])
def test_swa_on_a_binarized_model_keeps_its_patterns(folder, tmp_path, method):  # noqa: F811
    src = tmp_path / "r"
    run_train(folder, src, "--epochs", "1")
    b = tmp_path / "b"
    run_train(folder, b, "--epochs", "1", "--finetune-from", str(src / "checkpoint.pth"),
              "--binarize", method, "--lr", "0.5")  # large: alpha moves well away from mean|W|
    out = tmp_path / "b-swa"
    run_train(folder, out, "--epochs", "2", "--finetune-from", str(b / "checkpoint.pth"),
              "--binarize", method, "--swa", "--lr-schedule", "constant", "--lr", "0")
    src_ck, ck = load_checkpoint(b / "checkpoint.pth"), load_checkpoint(out / "checkpoint.pth")
    # Learning rate 0, so the average of copies of the B is the B (batch norm aside).
    # Starting from a B keeps its trained alpha: before any step it computes what the B computed.
    start, end = ck["extra"]["acc_after_binarization"], src_ck["history"][-1]
    assert abs(start["val_loss"] - end["val_loss"]) < 1e-5, (start, end)
    source, model = build_model_from_checkpoint(src_ck), build_model_from_checkpoint(ck)
    before = dict(source.named_modules())
    n = 0
    for name, m in model.named_modules():
        if isinstance(m, quant.PatternConv2d) and m.binarized:
            assert torch.equal(m.pattern, before[name].pattern), name
            assert torch.allclose(m.alpha, before[name].alpha), name
            n += 1
    assert n > 0
