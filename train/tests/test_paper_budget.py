"""The ImageNet-shape SEP-Nets land on the paper's budget (shared/paper/NOTES.md sections 3-4):
sepnet_small ~1.30M parameters, ~260M multiply-accumulates at 224x224, and files no larger than
the paper's: R <= 5.2 MB, B <= 4.2 MB, BQ <= 1.3 MB (10^6 bytes; paper sizes count 4 bytes per
real weight, 1 bit per pattern weight, 1 byte per int8 weight). sepnet_large ~1.7M."""

import pytest
import torch

from sepnet_train.export import export_sepnet
from sepnet_train.models import count_weights, create_model
from sepnet_train.quant import binarize_model

PAPER_BYTES = {"R": 5_200_000, "B": 4_200_000, "BQ": 1_300_000}


@pytest.mark.parametrize("variant", ["R", "B", "BQ"])
def test_sepnet_small_files_fit_the_paper(tmp_path, variant):
    torch.manual_seed(0)
    model = create_model("sepnet_small").eval()
    if variant != "R":
        binarize_model(model, "alpha", policy="all")
    path = tmp_path / f"small-{variant}.sepnet"
    summary = export_sepnet(model, "sepnet_small", variant, path)
    size = path.stat().st_size
    assert size == summary["bytes"]
    assert size <= PAPER_BYTES[variant], f"{variant}: {size} bytes > {PAPER_BYTES[variant]}"
    assert abs(summary["params"] - 1.30e6) <= 0.02 * 1.30e6
    assert abs(summary["macs"] - 260e6) <= 0.02 * 260e6


def test_sepnet_large_is_about_1_7m():
    n = count_weights(create_model("sepnet_large"))
    assert abs(n - 1.7e6) <= 0.03 * 1.7e6
