"""Exporter tests: batch-norm folding, pattern bits, int8, statistics, manifest and CLI."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
import torch.nn as nn
from conftest import rel_err
from safetensors.numpy import load_file

from sepnet_train import export, golden, quant, reference
from sepnet_train.models import create_model, resnet_cifar, sepnet

CIFAR_MODELS = ("sepnet_cifar", "resnet20", "resnet20_proj3")


def _x(seed=0, n=2, size=32):
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """{(model, variant): (module, path)} for the perturbed-BN golden models."""
    d = tmp_path_factory.mktemp("exp")
    out = {}
    for name in CIFAR_MODELS:
        for v in ("R", "B", "BQ"):
            m = golden.make_model(name, v)
            p = d / f"{name}-{v}.sepnet"
            export.export_sepnet(m, name, v, p, trained=False)
            out[name, v] = (m, p)
    return out


# -- (a) folding ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", CIFAR_MODELS)
@pytest.mark.parametrize("variant", ["R", "B"])
def test_reference_matches_module(exported, name, variant):
    model, path = exported[name, variant]
    x = _x()
    with torch.no_grad():
        want = model(x)
    got, _ = reference.load(path).run(x)
    assert rel_err(got, want) < 1e-4


class _AddBias(nn.Module):
    def __init__(self, b):
        super().__init__()
        self.register_buffer("b", b)

    def forward(self, x):
        return x + self.b.view(1, -1, 1, 1)


def _fold_groups(model):
    """(parent, bn attribute, convs sharing that BN) for every BN of the two model families."""
    for m in model.modules():
        if isinstance(m, sepnet.ConvBNReLU):
            yield m, "bn", [m.conv]
        elif isinstance(m, sepnet.PatternResidualBlock):
            yield m, "bn", [m.pattern, m.pointwise]
        elif isinstance(m, resnet_cifar.BasicBlock):
            yield m, "bn1", [m.conv1]
            yield m, "bn2", [m.conv2]
            if m.shortcut is not None:
                yield m, "shortcut_bn", [m.shortcut]
        elif isinstance(m, resnet_cifar.CifarResNet):
            yield m, "bn1", [m.conv1]


def independent_bq(model):
    """What a BQ file should compute, built without the exporter: fold BN in the module, then
    replace every non-pattern weight by its int8 reconstruction (quant.fake_quant_int8)."""
    m = copy.deepcopy(model).eval()
    with torch.no_grad():
        for parent, attr, convs in list(_fold_groups(m)):
            bn = getattr(parent, attr)
            s = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
            for c in convs:
                if c.binarized:
                    c.alpha.data = (c.alpha.double() * s).float()
                else:
                    w = (c.weight.double() * s.view(-1, 1, 1, 1)).float()
                    c.weight.data = quant.fake_quant_int8(w)
            bias = (bn.bias.double() - bn.running_mean.double() * s).float()
            setattr(parent, attr, _AddBias(bias))
        m.fc.weight.data = quant.fake_quant_int8(m.fc.weight.data)
    return m


@pytest.mark.parametrize("name", CIFAR_MODELS)
def test_bq_close_to_b_and_exact_to_dequantized(exported, name):
    model, path = exported[name, "BQ"]
    x = _x()
    got, _ = reference.load(path).run(x)
    with torch.no_grad():
        b = model(x)
        deq = independent_bq(model)(x)
    assert rel_err(got, b) < 2e-2  # int8 rounding only (measured ~0.4%)
    assert rel_err(got, deq) < 1e-5


def test_bq_weights_are_int8_except_patterns(exported):
    _, path = exported["sepnet_cifar", "BQ"]
    ref = reference.load(path)
    encs = {n["name"]: n["weight"]["encoding"] for n in ref.graph["nodes"] if "weight" in n}
    assert set(encs.values()) == {"int8", "pattern"}
    assert encs["conv1"] == "int8" and encs["fc"] == "int8"  # the stem stays non-binary
    assert encs["module1.slice1.pattern"] == "pattern"
    assert encs["module1.slice1.pointwise"] == "int8"  # 1×1: never a pattern
    assert ref.provenance["binarized_layers"] == [k for k, v in encs.items() if v == "pattern"]


def test_negative_pattern_scales_and_bias_placement(exported):
    _, path = exported["sepnet_cifar", "B"]
    ref = reference.load(path)
    t = load_file(str(path))
    assert (t["conv2.scale"] < 0).any() and (t["conv2.scale"] > 0).any()
    nodes = {n["name"]: n for n in ref.graph["nodes"]}
    # conv_sum: the BN bias sits on the last branch only, then one add named after the block.
    assert nodes["module1.slice1.pattern"]["bias"] is None
    assert nodes["module1.slice1.pointwise"]["bias"] == "module1.slice1.pointwise.bias"
    assert nodes["module1.slice1"]["op"] == "add"
    assert nodes["module1.slice1"]["inputs"] == ["module1.slice1.pattern",
                                                 "module1.slice1.pointwise"]


# -- (b) pattern bits ----------------------------------------------------------------------------
def test_pack_pattern_hand_example():
    w = [+1, -1, +1, +1, -1, -1, -1, +1, +1]
    packed = export.pack_pattern(np.array(w, dtype=np.float32).reshape(1, 1, 3, 3))
    assert packed.dtype == np.uint8
    assert packed.tolist() == [[0b10001101, 0b00000001]]
    # all +1: the 7 padding bits of the second byte stay clear
    assert export.pack_pattern(np.ones((2, 1, 3, 3))).tolist() == [[255, 1], [255, 1]]
    # exactly 8 weights: no padding byte
    assert export.pack_pattern(-np.ones((1, 2, 2, 2))).tolist() == [[0]]


class _OneConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = quant.PatternConv2d(1, 1, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(1)
        self.fc = nn.Linear(1, 2)

    def export_graph(self, g):
        return g.linear("fc", self.fc, g.gap("pool", g.conv("conv", self.conv, g.input, self.bn)))


def test_pattern_export_bytes_and_sign_of_zero(tmp_path):
    m = _OneConv().eval()
    with torch.no_grad():
        # the third weight is exactly 0: sign(0) = +1, so its bit is set
        m.conv.weight.copy_(torch.tensor([0.5, -0.2, 0.0, 0.1, -0.3, -0.1, -0.4, 0.2, 0.6])
                            .view(1, 1, 3, 3))
        m.bn.running_var.fill_(4.0 - m.bn.eps)  # s = γ / 2
        m.bn.weight.fill_(-1.0)  # negative BN scale goes into the pattern scale
    quant.binarize_model(m)
    g = export.build_graph(m, "B", [1, 4, 4])
    assert g.tensors["conv.weight"].tolist() == [[0b10001101, 0b00000001]]
    alpha = float(m.conv.alpha.detach())
    assert np.allclose(g.tensors["conv.scale"], [-alpha / 2])
    p = tmp_path / "one.sepnet"
    export.write_sepnet(p, g, ["a", "b"], export.default_preprocess("cifar10", 4), {})
    ref = reference.load(p)
    signs = torch.tensor([1, -1, 1, 1, -1, -1, -1, 1, 1.0]).view(1, 1, 3, 3)
    assert torch.allclose(ref.weights["conv"], -alpha / 2 * signs)


# -- statistics, metadata ------------------------------------------------------------------------
def _hook_macs(model, x):
    macs = []

    def hook(mod, inp, out):
        if isinstance(mod, nn.Conv2d):
            macs.append(out[0].numel() * mod.in_channels // mod.groups * mod.kernel_size[0]
                        * mod.kernel_size[1])
        else:
            macs.append(mod.in_features * mod.out_features)
    hs = [m.register_forward_hook(hook) for m in model.modules()
          if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model(x)
    for h in hs:
        h.remove()
    return sum(macs)


@pytest.mark.parametrize("name", CIFAR_MODELS)
def test_params_macs_and_metadata(exported, name):
    model, path = exported[name, "R"]
    s = export.export_sepnet(model, name, "R", path.with_suffix(".again.sepnet"), trained=False)
    t = load_file(str(path))
    assert s["params"] == sum(a.size for a in t.values())  # R: every tensor is a weight/bias
    assert s["macs"] == _hook_macs(model, _x(n=1))
    assert s["bytes"] == path.stat().st_size
    ref = reference.load(path)
    assert ref.labels == export.CIFAR10_LABELS
    assert ref.preprocess == {"input_size": [32, 32], "channel_order": "RGB",
                              "mean": [0.4914, 0.4822, 0.4465], "std": [0.247, 0.2435, 0.2616],
                              "crop_ratio": 1.0, "resize": "bilinear"}
    p = ref.provenance
    assert (p["model"], p["variant"], p["dataset"], p["trained"], p["accuracy"]) == \
        (name, "R", "cifar10", False, None)
    assert p["binarization"] is None and p["binarized_layers"] == []
    assert p["created"].endswith("Z")


def test_variant_checks():
    m = create_model("resnet20")
    with pytest.raises(ValueError, match="binarized"):
        export.build_graph(m, "B", [3, 32, 32])
    quant.binarize_model(m)
    with pytest.raises(ValueError, match="variant R"):
        export.build_graph(m, "R", [3, 32, 32])


@pytest.mark.parametrize("name,proj", [("resnet20", (1, 1)), ("resnet20_proj3", (3, 3))])
def test_resnet_binarizes_block_convs_only(name, proj):
    """The authors' layout: 18 block convs binarized; stem and projections (1x1 or, as in their
    Caffe prototxt, 3x3 stride 2) stay real and keep training."""
    m = create_model(name)
    names = quant.binarize_model(m)
    assert len(names) == 18 and all(n.split(".")[-1] in ("conv1", "conv2") for n in names)
    assert "conv1" not in names
    projections = [b.shortcut for b in m.blocks if b.shortcut is not None]
    assert [p.kernel_size for p in projections] == [proj, proj]
    assert all(not p.binarized and p.weight.requires_grad for p in projections + [m.conv1])


# -- (d) manifest --------------------------------------------------------------------------------
def test_manifest_replaces_same_file(tmp_path):
    mf = tmp_path / "manifest.json"
    e = {"file": "a.sepnet", "name": "A", "model": "resnet20", "variant": "R",
         "dataset": "cifar10", "params": 1, "bytes": 2, "macs": 3, "trained": False,
         "accuracy": None}
    export.update_manifest(mf, e)
    export.update_manifest(mf, {**e, "file": "b.sepnet", "name": "B"})
    data = export.update_manifest(mf, {**e, "bytes": 99})
    assert data == json.loads(mf.read_text())
    assert data["version"] == 1
    assert [m["file"] for m in data["models"]] == ["a.sepnet", "b.sepnet"]
    assert data["models"][0]["bytes"] == 99
    assert set(data["models"][0]) == set(export.MANIFEST_KEYS)
    assert [m["default"] for m in data["models"]] == [True, False]  # first becomes default
    data = export.update_manifest(mf, {**e, "file": "b.sepnet", "default": True})
    assert [m["default"] for m in data["models"]] == [False, True]


# -- CLI -----------------------------------------------------------------------------------------
def test_cli_untrained_and_checkpoint(tmp_path):
    mf = tmp_path / "manifest.json"
    out = tmp_path / "r20-bq-untrained.sepnet"
    s = export.main(["--model", "resnet20", "--variant", "BQ", "--untrained", "--seed", "3",
                     "--out", str(out), "--manifest", str(mf)])
    assert s["trained"] is False and "untrained" in s["name"]
    ref = reference.load(out)
    assert ref.provenance["seed"] == 3 and ref.provenance["binarization"] == "alpha"
    assert json.loads(mf.read_text())["models"][0]["file"] == out.name

    # a fine-tuned (binarized, offset method) checkpoint round-trips through the CLI
    m = golden.make_model("resnet20", "R")
    quant.binarize_model(m, "offset", 0.09, "all")
    ckpt = tmp_path / "ckpt.pth"
    torch.save({"model": m.state_dict(), "accuracy": {"split": "val5k", "top1": 0.5},
                "args": {"model": "resnet20", "binarize": "offset", "offset": 0.09,
                         "policy": "all"}}, ckpt)
    out = tmp_path / "r20-b.sepnet"
    s = export.main(["--checkpoint", str(ckpt), "--variant", "B", "--out", str(out)])
    ref = reference.load(out)
    assert s["trained"] is True and s["accuracy"]["top1"] == 0.5
    assert ref.provenance["binarization"] == "offset"
    assert ref.provenance["binarization_offset"] == 0.09
    x = _x()
    with torch.no_grad():
        assert rel_err(ref(x), m.eval()(x)) < 1e-4

    # a real-valued checkpoint: R as is, BQ binarized after loading per the flags
    m = golden.make_model("sepnet_cifar", "R")
    classes = [f"c{i}" for i in range(10)]
    torch.save({"model": m.to(memory_format=torch.channels_last).state_dict(), "classes": classes,
                "args": {"model": "sepnet_cifar", "binarize": "none"}}, ckpt)
    out = tmp_path / "sc-r.sepnet"
    export.main(["--checkpoint", str(ckpt), "--variant", "R", "--out", str(out)])
    with torch.no_grad():
        assert rel_err(reference.load(out)(x), m(x)) < 1e-4
    assert reference.load(out).labels == classes
    out = tmp_path / "sc-bq.sepnet"
    export.main(["--checkpoint", str(ckpt), "--variant", "BQ", "--policy", "prb",
                 "--out", str(out)])
    prov = reference.load(out).provenance
    assert prov["finetuned"] is False and prov["binarization_policy"] == "prb"
    layers = prov["binarized_layers"]
    assert layers and all(n.endswith(".pattern") for n in layers)


def test_relative_quantization_error_against_explicit_residual():
    g = torch.Generator().manual_seed(7)
    w = torch.randn(64, 16, 3, 3, generator=g)
    b, a = quant.binarize_alpha(w)
    resid = (w - a.view(-1, 1, 1, 1) * b).pow(2).flatten(1).sum(1) / w.pow(2).flatten(1).sum(1)
    assert quant.relative_quantization_error(w) == pytest.approx(float(resid.mean()), rel=1e-5)
    # Gaussian weights: 1 - 2/pi; one magnitude per filter: 0; scale-free; an all-zero filter: 0
    big = torch.randn(512, 64, 3, 3, generator=g)
    assert quant.relative_quantization_error(big) == pytest.approx(1 - 2 / np.pi, abs=5e-3)
    assert quant.relative_quantization_error(torch.sign(w) * 0.3) == pytest.approx(0, abs=1e-6)
    assert quant.relative_quantization_error(w * 1e-3) == pytest.approx(
        quant.relative_quantization_error(w), rel=1e-4)
    w[0] = 0
    assert np.isfinite(quant.relative_quantization_error(w))
