"""data.jpeg_survey / ijg_quality against files Pillow (libjpeg) encodes at known settings."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sepnet_train import data as D


@pytest.mark.parametrize("quality", [1, 10, 49, 50, 51, 75, 90, 100])
def test_ijg_quality_recovers_the_encoder_setting(tmp_path, quality):
    img = Image.fromarray(np.random.default_rng(quality).integers(0, 256, (32, 32, 3), np.uint8))
    img.save(tmp_path / "x.jpg", quality=quality)
    with Image.open(tmp_path / "x.jpg") as im:
        assert D.ijg_quality(im.quantization[0]) == quality


def test_ijg_quality_rejects_a_custom_table():
    table = np.full(64, 7)
    assert D.ijg_quality(table) is None


def test_jpeg_survey_counts_each_encoding(tmp_path):
    rng = np.random.default_rng(0)
    for cls, settings in {"a": [(75, 2), (75, 2), (60, 0)], "b": [(90, 1), (75, 2)]}.items():
        (tmp_path / cls).mkdir()
        for i, (q, sub) in enumerate(settings):
            img = Image.fromarray(rng.integers(0, 256, (32, 32, 3), np.uint8))
            img.save(tmp_path / cls / f"{i}.jpg", quality=q, subsampling=sub)
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), np.uint8)).save(tmp_path / "b" / "p.png")
    report = D.jpeg_survey(tmp_path)
    assert report["files"] == report["of"] == 6
    got = {(e["format"], e["quality"], e["chroma_subsampling"]): e["files"]
           for e in report["encodings"]}
    assert got == {("JPEG", 75, "4:2:0"): 3, ("JPEG", 60, "4:4:4"): 1, ("JPEG", 90, "4:2:2"): 1,
                   ("PNG", None, None): 1}
    assert D.jpeg_survey(tmp_path, every=2)["files"] == 3
