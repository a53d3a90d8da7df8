"""bench_step times both precisions and the teacher, and its ratios are those of its medians."""

import json

from sepnet_train import bench_step


def test_bench_step_reports_same_run_ratios(tmp_path):
    path = tmp_path / "bench.json"
    out = bench_step.main(["--model", "resnet20", "--teacher", "resnet20", "--batch-size", "4",
                           "--threads", "1", "--warmup", "1", "--rounds", "3",
                           "--json-out", str(path)])
    med = out["median_seconds"]
    assert set(med) == {"step_fp32", "step_bf16", "teacher_fp32", "teacher_bf16"}
    assert all(v > 0 for v in med.values())
    assert abs(out["bf16_over_fp32_step"] - med["step_bf16"] / med["step_fp32"]) < 1e-3
    assert abs(out["teacher_fp32_over_step_fp32"] - med["teacher_fp32"] / med["step_fp32"]) < 1e-3
    assert json.loads(path.read_text()) == out


def test_bench_step_times_a_compiled_teacher(tmp_path):
    out = bench_step.main(["--model", "resnet20", "--teacher", "resnet20", "--compile-teacher",
                           "--batch-size", "4", "--threads", "1", "--warmup", "1", "--rounds", "3"])
    med = out["median_seconds"]
    assert med["teacher_bf16_compiled"] > 0
    assert abs(out["teacher_bf16_over_compiled"]
               - med["teacher_bf16"] / med["teacher_bf16_compiled"]) < 1e-3
