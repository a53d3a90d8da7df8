"""Recovering a trainable model from an exported R file (``sepnet_train.recover``), and the
distillation loss the refinement can use with it as teacher."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from conftest import rel_err

from sepnet_train import export, quant, recover, reference
from sepnet_train.models import create_model
from sepnet_train.train import TeacherEnsemble, distillation_loss, distillation_terms


def _original(name, x):
    """A model with non-trivial BN (some γ < 0, so the fold's factor is negative) whose running
    statistics are exactly x's batch statistics."""
    torch.manual_seed(0)
    m = create_model(name)
    for bn in m.modules():
        if isinstance(bn, nn.BatchNorm2d):
            bn.weight.data.uniform_(-1.5, 1.5)
            bn.bias.data.normal_(0, 0.3)
            bn.momentum = None  # cumulative average: one batch gives its own statistics
            bn.reset_running_stats()
    m.train()
    with torch.no_grad():
        m(x)
    return m.eval()


@pytest.mark.parametrize("name", ["sepnet_cifar", "resnet20"])
def test_recovered_model_is_the_file_and_binarizes_like_the_original(tmp_path, name):
    x = torch.randn(128, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    orig = _original(name, x)
    path = tmp_path / "r.sepnet"
    export.export_sepnet(orig, name, "R", path, trained=False)
    ref = reference.load(path)
    rec = recover.recover_model(ref, name, x).eval()
    with torch.no_grad():
        # Eval mode: the file's function exactly (and so the original's).
        assert rel_err(rec(x[:16]), ref.run(x[:16])[0]) < 1e-4
        assert rel_err(rec(x[:16]), orig(x[:16])) < 1e-4
        # The BN scale and shift come back as the original's (γ up to the fold's sign).
        for (n, a), (_, b) in zip(orig.named_modules(), rec.named_modules()):
            if isinstance(a, nn.BatchNorm2d):
                assert rel_err(b.weight.abs(), a.weight.abs()) < 1e-3, n
                assert rel_err(b.bias, a.bias) < 1e-3, n
        # Binarized and in train mode (batch statistics), the two are the same network:
        # the recovered patterns are the original ones up to the sign BN absorbs.
        quant.binarize_model(orig, "alpha")
        quant.binarize_model(rec, "alpha")
        orig.train()
        rec.train()
        assert rel_err(rec(x), orig(x)) < 1e-3


def test_recover_rejects_binarized_files_and_other_models(tmp_path):
    x = torch.randn(8, 3, 32, 32)
    m = _original("resnet20", x)
    r_path, b_path = tmp_path / "r.sepnet", tmp_path / "b.sepnet"
    export.export_sepnet(m, "resnet20", "R", r_path, trained=False)
    with pytest.raises(ValueError, match="not a sepnet_cifar graph"):
        recover.recover_model(reference.load(r_path), "sepnet_cifar", x)
    quant.binarize_model(m, "alpha")
    export.export_sepnet(m, "resnet20", "B", b_path, trained=False)
    with pytest.raises(ValueError, match="binarized"):
        recover.recover_model(reference.load(b_path), "resnet20", x)


def test_distillation_loss():
    g = torch.Generator().manual_seed(0)
    out, teacher = torch.randn(32, 10, generator=g), torch.randn(32, 10, generator=g)
    y = torch.randint(0, 10, (32,), generator=g)
    ce = nn.CrossEntropyLoss()
    # Weight 0: the plain loss. Student = teacher: the soft term vanishes.
    assert torch.allclose(distillation_loss(out, y, teacher, ce, 0.0, 4.0), ce(out, y))
    assert torch.allclose(distillation_loss(teacher, y, teacher, ce, 1.0, 4.0),
                          torch.zeros(()), atol=1e-6)
    # Weight 1, T = 1: the KL divergence, computed here from its definition.
    p = torch.softmax(teacher, 1)
    kl = (p * (p.log() - torch.log_softmax(out, 1))).sum(1).mean()
    assert torch.allclose(distillation_loss(out, y, teacher, ce, 1.0, 1.0), kl, atol=1e-6)


def test_distillation_loss_is_float32_under_bfloat16_autocast():
    # A student close to its teachers, as late in a distilled run: the soft term is small and a
    # bfloat16 computation of it is mostly rounding. Sessions 31-34 trained the ResNet-20 R with
    # this loss in bfloat16 (--amp); its training loss rose while the learning rate fell.
    g = torch.Generator().manual_seed(1)
    teacher = 6 * torch.randn(128, 10, generator=g)
    out = teacher + 0.05 * torch.randn(128, 10, generator=g)
    y = torch.randint(0, 10, (128,), generator=g)
    ce = nn.CrossEntropyLoss(label_smoothing=0.1)
    out16, teacher16 = out.bfloat16(), teacher.bfloat16()
    # The reference: the same bfloat16 logits, the loss in float64.
    want = distillation_loss(out16.double(), y, teacher16.double(), ce, 0.9, 4.0)
    assert want.dtype == torch.float64
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = distillation_loss(out16, y, teacher16, ce, 0.9, 4.0)
        # What the loss was before: the soft term (weight 1) in bfloat16.
        old = distillation_terms(out16, y, teacher16, ce, 1.0, 4.0)
    assert got.dtype == torch.float32
    assert abs(got.item() - want.item()) < 1e-5 * max(1.0, abs(want.item()))
    soft_want = distillation_loss(out16.double(), y, teacher16.double(), ce, 1.0, 4.0)
    # The test can fail: the bfloat16 soft term is off by far more than the tolerance above.
    assert abs(old.float().item() - soft_want.item()) > 1e-3


def test_teacher_ensemble_averages_logits_and_passes_one_teacher_through():
    torch.manual_seed(0)
    a, b = nn.Linear(6, 10), nn.Linear(6, 10)
    x = torch.randn(4, 6)
    assert torch.equal(TeacherEnsemble([a])(x), a(x))
    both = TeacherEnsemble([a, b])(x)
    assert torch.allclose(both, (a(x) + b(x)) / 2, atol=1e-6)
    # softmax of the mean logit = normalized geometric mean of the two distributions
    geo = (torch.softmax(a(x), 1) * torch.softmax(b(x), 1)).sqrt()
    assert torch.allclose(torch.softmax(both, 1), geo / geo.sum(1, keepdim=True), atol=1e-6)
