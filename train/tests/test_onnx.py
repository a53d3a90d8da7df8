"""(c) R models exported to ONNX run in onnxruntime with the module's logits, and the R
``.sepnet`` of the same module agrees with onnxruntime too."""

from __future__ import annotations

import pytest
import torch
from conftest import rel_err

from sepnet_train import export, golden, onnx_export, reference
from sepnet_train.models import create_model, get_spec

ort = pytest.importorskip("onnxruntime")


def _session(path):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def _model(name):
    if name == "sepnet_small":
        torch.manual_seed(0)
        return create_model(name).eval()
    return golden.make_model(name, "R")  # perturbed batch norms: folding matters


@pytest.mark.parametrize("name", ["sepnet_cifar", "resnet20", "sepnet_small"])
def test_onnx_matches_module_and_sepnet(tmp_path, name):
    model = _model(name)
    size = get_spec(name).input_size
    path = onnx_export.export_onnx(model, name, tmp_path / f"{name}.onnx")
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    got = torch.from_numpy(_session(path).run(None, {"input": x.numpy()})[0])
    with torch.no_grad():
        want = model(x)
    assert got.shape == want.shape
    assert rel_err(got, want) < 1e-4
    sep = tmp_path / f"{name}.sepnet"
    export.export_sepnet(model, name, "R", sep, trained=False)
    assert rel_err(reference.load(sep)(x), got) < 1e-4


def test_onnx_rejects_binarized(tmp_path):
    with pytest.raises(ValueError):
        onnx_export.export_onnx(golden.make_model("resnet20", "B"), "resnet20", tmp_path / "x.onnx")
