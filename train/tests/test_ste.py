"""``--binarize ste`` (ours): patterns learned through a straight-through estimator.

Checked against explicit references: the gradient the latent weight receives is the gradient of
a plain convolution with the effective weight αB (autograd on an independent F.conv2d), α's
gradient is the frozen-pattern layer's, saved patterns are the signs of the saved weights, and a
checkpoint loaded by the exporter (patterns frozen) computes what the training layer computed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sepnet_train import quant
from sepnet_train.models import create_model


def _layer(seed=0, cin=5, cout=7, k=3):
    torch.manual_seed(seed)
    m = quant.PatternConv2d(cin, cout, k, padding=1, bias=False)
    m.weight.data = torch.randn_like(m.weight) * 0.05
    return m


def test_ste_sign_forward_is_sign_and_backward_divides_by_scale():
    w = torch.tensor([[-0.2, 0.0, 0.3], [0.1, -0.4, 0.5]], requires_grad=True)
    s = torch.tensor([0.5, 2.0], requires_grad=True)
    out = quant.ste_sign(w, s)
    assert torch.equal(out.detach(), torch.tensor([[-1.0, 1.0, 1.0], [1.0, -1.0, 1.0]]))
    g = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    out.backward(g)
    assert torch.allclose(w.grad, g / s.detach().view(-1, 1))
    assert s.grad is None or torch.count_nonzero(s.grad) == 0, "the scale is a constant here"


def test_latent_weight_gets_the_effective_weights_gradient():
    ste, frozen = _layer(), _layer()
    ste.binarize("ste")
    frozen.binarize("alpha")
    assert ste.weight.requires_grad and not frozen.weight.requires_grad
    x = torch.randn(2, 5, 6, 6)
    target = torch.randn(2, 7, 6, 6)
    (ste(x) * target).sum().backward()
    (frozen(x) * target).sum().backward()
    # Independent reference: a plain conv whose weight is αB, differentiated by autograd.
    w_eff = (frozen.alpha.detach().view(-1, 1, 1, 1) * frozen.pattern).requires_grad_(True)
    (F.conv2d(x, w_eff, padding=1) * target).sum().backward()
    assert torch.allclose(ste.weight.grad, w_eff.grad, atol=1e-5)
    assert torch.allclose(ste.alpha.grad, frozen.alpha.grad, atol=1e-5)


def test_patterns_flip_and_the_saved_pattern_is_the_saved_weights_sign():
    m = _layer(1)
    m.binarize("ste")
    before = m.pattern.clone()
    opt = torch.optim.SGD(m.parameters(), lr=1.0)
    x = torch.randn(4, 5, 6, 6)
    (m(x) ** 2).sum().backward()
    opt.step()  # the buffer still holds the pre-step signs until the layer is used or saved
    state = m.state_dict()
    assert torch.equal(state["pattern"], quant.sign(m.weight.detach()))
    assert not torch.equal(state["pattern"], before), "a big step should flip some signs"


def test_exported_view_of_an_ste_checkpoint_matches_training_forward():
    torch.manual_seed(0)
    model = create_model("resnet20")
    quant.binarize_model(model, "ste")
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    x = torch.randn(4, 3, 32, 32)
    model.train()
    model(x).logsumexp(1).sum().backward()
    opt.step()
    model.eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    # What export.load / a resume do: a fresh model, pattern slots from the state, load.
    fresh = create_model("resnet20")
    quant.prepare_state_for(fresh, state)
    fresh.load_state_dict(state)
    fresh.eval()
    assert not any(m.learn_pattern for m in fresh.modules() if isinstance(m, quant.PatternConv2d))
    with torch.no_grad():
        assert torch.allclose(fresh(x), model(x), atol=1e-5)
    # Resuming an ste run: binarize first, then the slots are kept and the weight still trains.
    again = create_model("resnet20")
    quant.binarize_model(again, "ste")
    quant.prepare_state_for(again, state)
    again.load_state_dict(state)
    convs = [m for m in again.modules() if isinstance(m, quant.PatternConv2d) and m.binarized]
    assert convs and all(m.learn_pattern and m.weight.requires_grad for m in convs)


def test_pattern_flips_counts_the_bits_that_changed():
    import copy

    from sepnet_train.analysis import pattern_flips
    torch.manual_seed(1)
    source = create_model("sepnet_cifar")
    model = copy.deepcopy(source)
    names = quant.binarize_model(model, "ste")
    assert pattern_flips(model, source)["flipped"] == 0
    first = dict(model.named_modules())[names[0]]
    with torch.no_grad():
        first.weight.view(-1)[:5] *= -1  # five sign changes (trained weights are never exactly 0)
    model.state_dict()  # saving refreshes the stored patterns
    out = pattern_flips(model, source)
    assert out["flipped"] == 5 and out["layers"][names[0]] == 5 / first.weight.numel()
    assert out["bits"] == sum(dict(model.named_modules())[n].weight.numel() for n in names)
