"""The engine reproduces PyTorch's accuracy: ``sepnet eval`` (Rust, JPEG decoding and
preprocessing included) against this package's reference interpreter (PyTorch) on the same
slice of the fixed CIFAR-10 validation split, for every trained CIFAR-10 model in the manifest.

    python -m sepnet_train.check_engine --sepnet-bin target/release/sepnet --per-class 100

Exits 1 when top-1 or top-5 differ by more than ``--tolerance`` (0.1 point by default).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from . import data as D
from . import reference

REPO = Path(__file__).resolve().parents[2]


def reference_accuracy(model_path: Path, folder: Path, cache: Path) -> dict:
    ref = reference.load(model_path)
    images, labels, classes, _ = D.load_folder_uint8(folder, 32, cache_dir=cache)
    if classes != list(ref.labels):
        raise SystemExit(f"{model_path.name}: labels {ref.labels} != folder classes {classes}")
    return reference.evaluate(ref, reference.batches_for(ref, images, labels))


def engine_accuracy(sepnet_bin: Path, model_path: Path, folder: Path) -> dict:
    out = subprocess.run([str(sepnet_bin), "eval", str(model_path), str(folder), "--json"],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"sepnet eval failed on {model_path.name}: {out.stderr.strip()}")
    return json.loads(out.stdout)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sepnet-bin", default=str(REPO / "target" / "release" / "sepnet"))
    p.add_argument("--manifest", default=str(REPO / "www" / "models" / "manifest.json"))
    p.add_argument("--data-path", default=str(D.DEFAULT_CIFAR_TRAIN))
    p.add_argument("--per-class", type=int, default=100, help="validation images per class")
    p.add_argument("--tolerance", type=float, default=0.001)
    p.add_argument("--json-out", help="also write the comparison as JSON (docs/results/engine_eval.json)")
    a = p.parse_args(argv)

    manifest = json.loads(Path(a.manifest).read_text())
    models = [m for m in manifest["models"] if m.get("dataset") == "cifar10" and m.get("trained")]
    if not models:
        print("check_engine: no trained CIFAR-10 model in the manifest yet; nothing to compare")
        return 0
    failed, rows = False, []
    with tempfile.TemporaryDirectory() as tmp:
        folder, cache = Path(tmp) / "val", Path(tmp) / "cache"
        n = D.export_split(Path(a.data_path), folder, per_class=500, limit_per_class=a.per_class)
        print(f"{'model':32} {'n':>5} {'engine top1':>11} {'torch top1':>10} "
              f"{'engine top5':>11} {'torch top5':>10}")
        for m in models:
            path = Path(a.manifest).parent / m["file"]
            eng = engine_accuracy(Path(a.sepnet_bin), path, folder)
            ref = reference_accuracy(path, folder, cache)
            # Both sides decode with libjpeg-turbo (the CLI through the mozjpeg crate, PIL its
            # own), so the pixels are identical; what may remain is float summation order near
            # a tie. The epsilon keeps "1 in 1,000" inside a 0.001 tolerance despite
            # 0.881 - 0.880 being 0.0010000000000000009 in floats.
            tol = a.tolerance + 1e-9
            ok = (eng["n"] == n and abs(eng["top1"] - ref["top1"]) <= tol
                  and abs(eng["top5"] - ref["top5"]) <= tol)
            failed |= not ok
            rows.append({"file": m["file"], "n": eng["n"], "ok": ok,
                         "engine": {"top1": eng["top1"], "top5": eng["top5"]},
                         "torch": {"top1": ref["top1"], "top5": ref["top5"]}})
            print(f"{m['file']:32} {eng['n']:5} {eng['top1']:11.4f} {ref['top1']:10.4f} "
                  f"{eng['top5']:11.4f} {ref['top5']:10.4f}  {'ok' if ok else 'MISMATCH'}")
    if a.json_out:
        Path(a.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json_out).write_text(json.dumps(
            {"split": f"val{10 * a.per_class}", "tolerance": a.tolerance, "models": rows}, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
