"""Reference interpreter and golden data: (e) the committed golden set is reproducible and
self-consistent; the reader enforces the format's rules; max-pool padding is −∞."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import rel_err
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

from sepnet_train import export, golden, reference

GOLDEN = [(m, v) for m in golden.MODELS for v in golden.VARIANTS] + [("tiny", "B")]
REGEN = "regenerate with: cd train && python -m sepnet_train.golden --out ../tests/golden"


def _paths(d, model, variant):
    stem = golden.file_stem(model, variant)
    return d / f"{stem}.sepnet", d / f"{stem}.bundle.safetensors"


def _read(path):
    meta, tensors = reference.read_safetensors(path.read_bytes())
    return {k: (json.loads(v) if k not in ("sepnet.format", "sepnet.version", "model",
                                            "sepnet.bundle") else v)
            for k, v in meta.items()}, tensors


# -- (e) golden data -----------------------------------------------------------------------------
@pytest.mark.parametrize("model,variant", GOLDEN)
def test_golden_is_reproducible(golden_dir, tmp_path, model, variant):
    committed = _paths(golden_dir, model, variant)
    for p in committed:
        assert p.exists(), f"{p} missing; {REGEN}"
    fresh = (golden.make_tiny_golden(tmp_path) if model == "tiny"
             else golden.make_golden(model, variant, tmp_path))

    (meta_a, ta), (meta_b, tb) = _read(committed[0]), _read(fresh[0])
    assert meta_a == meta_b, f"{committed[0].name}: metadata differ (stale golden set?); {REGEN}"
    assert ta.keys() == tb.keys()
    for k in ta:
        assert ta[k].dtype == tb[k].dtype and ta[k].shape == tb[k].shape, k
        if ta[k].dtype == np.float32:
            np.testing.assert_allclose(ta[k], tb[k], rtol=1e-6, atol=1e-7, err_msg=k)
        else:  # pattern bits and int8 values must be identical
            assert (ta[k] == tb[k]).all(), f"{committed[0].name}: tensor {k} differs; {REGEN}"

    (bm_a, ba), (bm_b, bb) = _read(committed[1]), _read(fresh[1])
    assert bm_a == bm_b == {"sepnet.bundle": "1", "model": committed[0].name}
    assert ba.keys() == bb.keys()
    assert (ba["input"] == bb["input"]).all()
    for k in ba:
        assert rel_err(ba[k], bb[k]) < 1e-5, k


@pytest.mark.parametrize("model,variant", GOLDEN)
def test_golden_bundle_matches_reference(golden_dir, model, variant):
    path, bundle = _paths(golden_dir, model, variant)
    b = load_file(str(bundle))
    acts = sorted(k[len("act/"):] for k in b if k.startswith("act/"))
    ref = reference.load(path)
    assert len(acts) >= 4 and b["input"].shape == (golden.BATCH, *ref.input_shape)
    logits, got = ref.run(torch.from_numpy(b["input"]), capture=acts)
    tol = 1e-5 if variant == "BQ" else 1e-4  # BQ bundles come from the reference itself
    assert b["logits"].shape == (golden.BATCH, len(ref.labels))
    assert rel_err(logits, b["logits"]) < tol
    for a in acts:
        assert got[a].shape == b[f"act/{a}"].shape, a
        assert rel_err(got[a], b[f"act/{a}"]) < tol, a


# -- the reader's checks -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("ref") / "r20-b.sepnet"
    export.export_sepnet(golden.make_model("resnet20", "B"), "resnet20", "B", p, trained=False)
    with safe_open(str(p), "np") as f:
        meta = f.metadata()
    return p, meta, load_file(str(p))


def _rewrite(tmp_path, src, meta_fn=None, tensor_fn=None):
    _, meta, tensors = src
    meta, tensors = dict(meta), {k: v.copy() for k, v in tensors.items()}
    if meta_fn:
        meta_fn(meta)
    if tensor_fn:
        tensor_fn(tensors)
    p = tmp_path / "bad.sepnet"
    save_file(tensors, str(p), metadata=meta)
    return p


def _edit_graph(fn):
    def edit(meta):
        g = json.loads(meta["sepnet.graph"])
        fn(g)
        meta["sepnet.graph"] = json.dumps(g)
    return edit


def _set(key, value):
    def edit(meta):
        meta[key] = value
    return edit


def test_reader_accepts_the_original(small_file):
    ref = reference.load(small_file[0])
    assert ref.provenance["variant"] == "B" and len(ref.labels) == 10


@pytest.mark.parametrize("edit,message", [
    (dict(meta_fn=_set("sepnet.version", "2")), "unsupported version"),
    (dict(meta_fn=lambda m: m.pop("sepnet.labels")), "missing"),
    (dict(meta_fn=_set("sepnet.format", "onnx")), "sepnet.format"),
    (dict(meta_fn=_set("sepnet.labels", json.dumps(["a", "b"]))), "labels"),
    (dict(meta_fn=_edit_graph(lambda g: g["nodes"].insert(0, g["nodes"].pop(1)))), "earlier"),
    (dict(meta_fn=_edit_graph(lambda g: g["nodes"][0].update(op="gelu"))), "unknown op"),
    (dict(meta_fn=_edit_graph(lambda g: g["nodes"][0].update(kernel=[33, 33]))), "limits"),
    (dict(tensor_fn=lambda t: t.__setitem__("block1.conv1.scale", np.ones(3, np.float32))),
     "expected F32"),
    (dict(tensor_fn=lambda t: t.pop("fc.bias")), "does not exist"),
])
def test_reader_rejects(small_file, tmp_path, edit, message):
    p = _rewrite(tmp_path, small_file, **edit)
    with pytest.raises(reference.FormatError, match=message):
        reference.load(p)


def test_tiny_golden_exercises_padding_bits(golden_dir, tmp_path):
    path = golden_dir / "tiny-b.sepnet"
    with safe_open(str(path), "np") as f:
        meta = f.metadata()
    tensors = load_file(str(path))
    w = tensors["conv1.weight"]  # 27 weights per filter: 4 bytes, top 5 bits of byte 3 unused
    assert w.shape == (8, 4) and (w[:, 3] >> 3 == 0).all()
    assert tensors["prb.pattern.weight"].shape == (8, 5)  # 36 weights per filter
    w[2, 3] |= 0x40
    bad = tmp_path / "bad.sepnet"
    save_file(tensors, str(bad), metadata=meta)
    with pytest.raises(reference.FormatError, match="padding bits"):
        reference.load(bad)


def test_maxpool_padding_is_minus_infinity(tmp_path):
    # kernel 3, padding 2 (allowed by the format, beyond F.max_pool2d's limit of k/2)
    g = export.GraphBuilder("R", [1, 3, 3])
    g.output = g.gap("gap", g.maxpool("pool", g.input, 3, 1, 2))
    p = tmp_path / "pool.sepnet"
    export.write_sepnet(p, g, ["x"], export.default_preprocess("cifar10", 3), {})
    x = -1.0 - torch.rand(1, 1, 3, 3, generator=torch.Generator().manual_seed(0))
    ref = reference.load(p)
    _, acts = ref.run(x, capture=["pool"])
    # brute force: each output is the max over the in-bounds part of its window
    xp = x[0, 0].numpy()
    want = np.array([[xp[max(i - 2, 0):i + 1, max(j - 2, 0):j + 1].max() for j in range(5)]
                     for i in range(5)])
    assert acts["pool"].shape == (1, 1, 5, 5)
    np.testing.assert_allclose(acts["pool"][0, 0].numpy(), want)
    assert (acts["pool"] < 0).all()


def test_evaluate_counts_topk(golden_dir):
    ref = reference.load(golden_dir / "resnet20-r.sepnet")
    b = load_file(str(golden_dir / "resnet20-r.bundle.safetensors"))
    x, order = torch.from_numpy(b["input"]), torch.from_numpy(b["logits"]).argsort(dim=1)
    y_top1, y_last = order[:, -1], order[:, 0]  # the best class and the worst one
    acc = reference.evaluate(ref, [(x, y_top1), (x, y_last)], topk=(1, 5))
    assert acc == {"n": 4, "top1": 0.5, "top5": 0.5}
