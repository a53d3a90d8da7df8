"""The CIFAR-10 tables of ``docs/RESULTS.md``, generated from measured artefacts only.

Run folders live outside the repository (``~/sepnet-runs``), so ``--runs`` first copies what the
tables need into ``docs/results/``: each run's history and extras (``runs/NAME.json``) and its
curves (``runs/NAME-curves.png``). The tables are then rendered from ``docs/results/`` alone:

- the committed models' manifest entries (params, bytes, accuracy of the *file* measured by
  ``export --evaluate`` through the PyTorch reader);
- ``engine_eval.json`` (``check_engine --per-class 500 --json-out``: the Rust engine on the
  whole validation split beside PyTorch);
- the run summaries (final validation accuracy, accuracy right after binarization);
- the analysis JSONs in ``docs/figures/``.

    python -m sepnet_train.results --runs ~/sepnet-runs --write ../docs/RESULTS.md

``--write`` replaces the blocks between ``<!-- generated:NAME -->`` and ``<!-- end -->``.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import shutil
import statistics
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "docs" / "results"

# Issue 3's targets (validation top-1) and the authors' repository numbers (CIFAR-10 test set).
SEPNET_TARGETS = {"R": 0.920, "B": 0.910, "BQ": 0.910}
BQ_MAX_BYTES = 1_000_000
RESNET20_AUTHORS = {"full": 0.9118, "after": 0.1546, "refined": 0.8649}
RESNET20_TARGETS = {"full": 0.910, "refined": 0.880}
RESNET32_AUTHORS = {"full": 0.9276, "after": 0.2634, "refined": 0.9021}  # no target: "if time allows"
POSTER_GOOGLENET = {"1x1": 0.0462, "3x3": 0.0029, "5x5": 0.0056}

# Run folder name → what it is (the names reproduce_cifar.sh uses).
RUNS = ("sepnet_cifar-R", "sepnet_cifar-B", "resnet20-R", "resnet20-B", "resnet20-B-offset",
        # the ablation's other arms: the paper's crop + flip only
        "sepnet_cifar-R-plain", "resnet20-R-plain", "resnet20-B-plain", "resnet20-B-offset-plain",
        # ResNet-20 with the authors' 3x3 projection shortcuts
        "resnet20_proj3-R", "resnet20_proj3-B-plain", "resnet20_proj3-B-authors",
        # sepnet_cifar B refined with the R model as teacher (knowledge distillation), and with
        # the patterns learned through a straight-through estimator (--binarize ste)
        "sepnet_cifar-B-kd", "sepnet_cifar-B-ste",
        # stochastic weight averaging (--swa) of the R and of the learned-pattern B
        "sepnet_cifar-R-swa", "sepnet_cifar-B-ste-swa",
        # session 10 (this CPU): a short resnet20_proj3 R, refined with learned patterns
        "resnet20_proj3-R-cpu", "resnet20_proj3-B-ste", "resnet20_proj3-B-ste-swa",
        # session 11 (an H200, device_train.sh; unpacked under these names, see H200_STARTS):
        # resnet20_proj3 R at batch 512 and at 128, each refined with learned patterns, the first
        # R's weights averaged on this CPU, and sepnet_cifar's learned-pattern B from its R file
        "resnet20_proj3-R-h200", "resnet20_proj3-B-ste-h200", "resnet20_proj3-R128-h200",
        "resnet20_proj3-R128-B-ste-h200", "resnet20_proj3-R-h200-swa", "sepnet_cifar-B-ste-h200",
        # the learned-pattern refinement of that R again, on this CPU: another seed (30 epochs),
        # and a third seed over 100 epochs (sessions 11-12)
        "resnet20_proj3-B-ste-h200-seed1", "resnet20_proj3-B-ste-h200-long",
        # session 13 (this CPU): a second cosine cycle for the session-11 R (warm restart)
        "resnet20_proj3-R-h200-restart",
        # sessions 13-14 (this CPU): a 200-epoch batch-128 R from scratch, bfloat16 autocast
        "resnet20_proj3-R128-long",
        # sessions 15 on (this CPU): session 11's 80-epoch batch-128 R again, distilled from the
        # sepnet_cifar R (its committed file, recovered); session 15's copy was lost with its machine
        "resnet20_proj3-R-kd",
        # sessions 18 on (this CPU): ResNet-32 in the authors' layout, session 11's batch-128
        # ResNet-20 recipe, then refined with learned patterns
        "resnet32_proj3-R", "resnet32_proj3-B-ste",
        # sessions 22 on (this CPU): the sepnet_cifar R trained on from its committed file,
        # distilled from itself and the ResNet-32 R together (their mean logits); then a
        # learned-pattern B from it
        "sepnet_cifar-R-kd-ens", "sepnet_cifar-B-ste-kd-ens",
        # session 25 (this CPU): that distilled R trained on, taught by itself and the ResNet-32 R
        "sepnet_cifar-R-kd-ens2",
        # session 25 on (this CPU): the learned-pattern B from the distilled R, distilled from the
        # same two teachers
        "sepnet_cifar-B-ste-kd-ens-teach",
        # session 26 on (this CPU): the 200-epoch ResNet-20 R again, distilled from that pair
        "resnet20_proj3-R-kd-long",
        # session 34 on (this CPU): that run again with its loss in float32, from its epoch 44
        "resnet20_proj3-R-kd-long-f32loss",
        # session 27 on (this CPU): the shipped B's run with three times its schedule (60 epochs)
        "sepnet_cifar-B-ste-kd-long",
        # sessions 35-37 (the Xeon, then an H200): the shipped R distilled for 60 epochs at lr 0.05
        # from three networks, and the same recipe from the best ResNet-20 R (H200, session 37)
        "sepnet_cifar-R-kd-long3", "resnet20_proj3-R-kd-long3",
        # session 31 (this CPU): the shipped B's patterns frozen, the rest polished 10 epochs;
        # sessions 37 on (this CPU): the shipped B's recipe from the long3 R
        "sepnet_cifar-B-ste-polish", "sepnet_cifar-B-ste-kd-long3",
        # session 41 (this CPU): the best ResNet-20 R given a low-lr tail from the strongest Rs
        "resnet20_proj3-R-kd-polish",
        # session 42 on (this CPU): that R's 200-epoch recipe again, seed 5, the strongest teachers
        "resnet20_proj3-R-kd-best",
        # session 47 on (an AMX Xeon): the same recipe, seed 6 only changed
        "resnet20_proj3-R-kd-seed6",
        # session 50 on (an AMX Xeon): the same recipe taught by all six finished R, seed 7
        "resnet20_proj3-R-kd-ens6",
        # fixed in session 51, to run after it: the long3 sepnet_cifar R recipe from all seven R
        "sepnet_cifar-R-kd-all7")
# device_train.sh names its folders as reproduce_cifar.sh does (resnet20_proj3-R, ...); session 11's
# were unpacked under *-h200 names beside the older runs, so a checkpoint's finetune_from still
# names the device's folder. What each refinement really started from:
H200_STARTS = {"resnet20_proj3-B-ste-h200": "resnet20_proj3-R-h200",
               "resnet20_proj3-R128-B-ste-h200": "resnet20_proj3-R128-h200",
               "sepnet_cifar-B-ste-h200": "sepnet_cifar-R-recovered"}


def summarize_run(run_dir: Path) -> dict | None:
    """The parts of a run's checkpoint worth keeping in the repository (no weights)."""
    ckpt_path = run_dir / "checkpoint.pth"
    if not ckpt_path.exists():
        return None
    import torch
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    extra = dict(ckpt.get("extra", {}))
    if "binarized_layers" in extra:
        extra["binarized_layers"] = len(extra["binarized_layers"])
    keep = ("model", "epochs", "lr", "wd", "batch_size", "binarize", "offset", "policy",
            "finetune_from", "label_smoothing", "cutout", "seed", "lr_schedule", "swa", "amp")
    return {"run": run_dir.name, "args": {k: ckpt["args"].get(k) for k in keep},
            "epochs_done": ckpt["epoch"] + 1, "accuracy": ckpt.get("accuracy"),
            "extra": extra, "history": ckpt["history"]}


def collect(runs: Path, dest: Path = RESULTS) -> list[str]:
    (dest / "runs").mkdir(parents=True, exist_ok=True)
    found = []
    for name in RUNS:
        s = summarize_run(runs / name)
        if s is None:
            continue
        (dest / "runs" / f"{name}.json").write_text(json.dumps(s, indent=1))
        if (runs / name / "curves.png").exists():
            shutil.copyfile(runs / name / "curves.png", dest / "runs" / f"{name}-curves.png")
        found.append(name)
    return found


# ---------------------------------------------------------------------------------- rendering

def _load(path: Path):
    return json.loads(path.read_text()) if path.exists() else None


def pct(x, digits=2) -> str:
    return "–" if x is None else f"{100 * x:.{digits}f}%"


def _verdict(value, target, extra_ok=True, unfinished: bool | str = False) -> str:
    """``unfinished``: True, or a run's ``_run_state`` ("unfinished" or "stopped")."""
    if unfinished:
        return unfinished if isinstance(unfinished, str) else "unfinished"
    if value is None:
        return "not measured yet"
    if value >= target and extra_ok:
        return "met"
    return f"missed by {100 * (target - value):.2f} pt" if value < target else "missed (size)"


def _run_final(run: dict | None):
    if not run:
        return None
    a = run.get("accuracy") or {}
    return a.get("top1")


# Runs stopped for good before their last epoch, and why: not "resumable".
STOPPED = {"resnet20_proj3-R-kd-long": "stopped, its distillation loss was bfloat16"}


def _run_state(run: dict | None) -> str:
    """"" for a finished run (or none), "stopped" for one in STOPPED, else "unfinished"."""
    if not run or run["epochs_done"] >= run["args"]["epochs"]:
        return ""
    return "stopped" if run.get("run") in STOPPED else "unfinished"


def _progress(run: dict | None) -> str:
    state = _run_state(run)
    if not state:
        return ""
    why = STOPPED[run["run"]] if state == "stopped" else "unfinished, resumable"
    return f" (epoch {run['epochs_done']} of {run['args']['epochs']}: {why})"


def _run_cell(run: dict | None, value) -> str:
    """A run's measurement and how far the run got: "not run", "–" or e.g. "88.82% (80 ep)"."""
    if not run:
        return "not run"
    if value is None:
        return "–"
    return pct(value) + (_progress(run) or f" ({run['epochs_done']} ep)")


# The run each shipped sepnet_cifar file was exported from. Session 24 shipped the distilled R
# (stage sepnet_r_kd_ens_ship: better than the 146-epoch sepnet_cifar-R at p = 0.0008); session 26
# the learned-pattern B taught by two networks (stage sepnet_b_ste_kd_ens_teach_ship: better than
# session 6's frozen-pattern sepnet_cifar-B at p = 0.044, its BQ at p = 0.042).
# Files exported since session 28 name their run in the provenance (`training_run`), which then
# wins over this table (shipped_runs).
SEPNET_SHIPPED_RUNS = {"R": "sepnet_cifar-R-kd-ens", "B": "sepnet_cifar-B-ste-kd-ens-teach",
                       "BQ": "sepnet_cifar-B-ste-kd-ens-teach"}


def shipped_runs(models_dir: Path, fallback=SEPNET_SHIPPED_RUNS) -> dict[str, str]:
    """The run each committed sepnet_cifar file came from: its provenance's ``training_run``
    where it records one, else ``fallback``."""
    from .reference import read_safetensors
    runs = dict(fallback)
    for v in runs:
        f = models_dir / f"sepnet_cifar-{v.lower()}.sepnet"
        if f.exists():
            meta, _ = read_safetensors(f.read_bytes())
            run = json.loads(meta.get("sepnet.provenance", "{}")).get("training_run")
            runs[v] = run or runs[v]
    return runs


def render_sepnet(results: Path, manifest: dict, shipped_runs=SEPNET_SHIPPED_RUNS) -> str:
    by_file = {m["file"]: m for m in manifest.get("models", [])}
    engine = {m["file"]: m for m in (_load(results / "engine_eval.json") or {}).get("models", [])}
    runs = {v: _load(results / "runs" / f"{shipped_runs[v]}.json") for v in ("R", "B", "BQ")}
    lines = [
        "| variant | training run | params | file bytes | training run, last epoch (PyTorch) | right after "
        "binarization | the file, PyTorch reader: top-1 / top-5 | the file, `sepnet eval`: "
        "top-1 / top-5 | target | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for v in ("R", "B", "BQ"):
        f = f"sepnet_cifar-{v.lower()}.sepnet"
        m, e, run = by_file.get(f), engine.get(f), runs[v]
        acc = (m or {}).get("accuracy") or {}
        after = ((run or {}).get("extra") or {}).get("acc_after_binarization") if v != "R" else None
        size_ok = m is None or v != "BQ" or m["bytes"] < BQ_MAX_BYTES
        target = f"≥ {pct(SEPNET_TARGETS[v], 1)}" + (", < 1 MB" if v == "BQ" else "")
        train_col = pct(_run_final(run)) + _progress(run) if v != "BQ" else "(B's run)"
        lines.append(f"| {v} | `{shipped_runs[v]}` | {m['params']:,} | {m['bytes']:,} | " if m
                     else f"| {v} | `{shipped_runs[v]}` | | | ")
        lines[-1] += (
            f"{train_col} | {pct((after or {}).get('val_top1')) if v != 'R' else 'n/a'} | "
            f"{pct(acc.get('top1'))} / {pct(acc.get('top5'))} | "
            f"{pct(e['engine']['top1']) + ' / ' + pct(e['engine']['top5']) if e else '–'} | "
            f"{target} | {_verdict(acc.get('top1'), SEPNET_TARGETS[v], size_ok)} |")
    if engine:
        ev = _load(results / "engine_eval.json")
        worst = max(max(abs(r["engine"]["top1"] - r["torch"]["top1"]),
                        abs(r["engine"]["top5"] - r["torch"]["top5"])) for r in ev["models"])
        lines.append("")
        lines.append(f"Engine against PyTorch on the whole split ({ev['split']}): largest "
                     f"difference {100 * worst:.2f} point (tolerance {100 * ev['tolerance']:.1f}).")
    return "\n".join(lines)


def _after(run):
    return ((run or {}).get("extra") or {}).get("acc_after_binarization", {}).get("val_top1")


def render_resnet20(results: Path) -> str:
    runs = {k: _load(results / "runs" / f"{k}.json")
            for k in ("resnet20-R", "resnet20-B", "resnet20-B-offset", "resnet20-B-plain",
                      "resnet20-B-offset-plain")}

    rows = [
        ("full precision", _run_final(runs["resnet20-R"]), _progress(runs["resnet20-R"]),
         RESNET20_AUTHORS["full"], RESNET20_TARGETS["full"]),
        ("right after binarization, offset 0.09", _after(runs["resnet20-B-offset"]), "",
         RESNET20_AUTHORS["after"], None),
        ("refined, offset 0.09", _run_final(runs["resnet20-B-offset"]),
         _progress(runs["resnet20-B-offset"]), RESNET20_AUTHORS["refined"],
         RESNET20_TARGETS["refined"]),
        ("right after binarization, alpha = mean\\|W\\| (paper)", _after(runs["resnet20-B"]), "",
         None, None),
        ("refined, alpha = mean\\|W\\|", _run_final(runs["resnet20-B"]),
         _progress(runs["resnet20-B"]), None, RESNET20_TARGETS["refined"]),
    ]
    # Refinements without Cutout / smoothing (the ablation's other arm), where they were run.
    for key, name, theirs in (("resnet20-B-offset-plain", "offset 0.09", RESNET20_AUTHORS["refined"]),
                              ("resnet20-B-plain", "alpha = mean\\|W\\|", None)):
        if runs[key]:
            rows.append((f"refined without Cutout, {name}", _run_final(runs[key]),
                         _progress(runs[key]), theirs, RESNET20_TARGETS["refined"]))
    lines = ["| stage | val top-1 (ours) | authors' repository (test set) | target | verdict |",
             "|---|---|---|---|---|"]
    for name, ours, prog, theirs, target in rows:
        lines.append(f"| {name} | {pct(ours)}{prog} | {pct(theirs)} | "
                     f"{'≥ ' + pct(target, 1) if target else '–'} | "
                     f"{_verdict(ours, target, unfinished=bool(prog)) if target else ('measured' if ours else 'not measured yet')} |")
    return "\n".join(lines)


def render_projections(results: Path) -> str:
    """1x1 against 3x3 projection shortcuts (the authors' layout), stage by stage."""
    # (stage, measure, (1x1 run, 3x3 run), authors' number, target); every run named is loaded
    stages = (
        ("full precision", _run_final, ("resnet20-R", "resnet20_proj3-R"), "full", "full"),
        ("right after binarization, alpha", _after,
         ("resnet20-B-plain", "resnet20_proj3-B-plain"), None, None),
        ("refined without Cutout, alpha", _run_final,
         ("resnet20-B-plain", "resnet20_proj3-B-plain"), "refined", "refined"),
        # the authors' refinement as their log has it: offset 0.09, wd 1e-4, lr 0.01 in steps
        ("right after binarization, offset 0.09", _after,
         (None, "resnet20_proj3-B-authors"), "after", None),
        ("refined as the authors: offset 0.09, wd 1e-4, step lr, no Cutout", _run_final,
         (None, "resnet20_proj3-B-authors"), "refined", "refined"),
        # ours: patterns learned (straight-through), from a shorter R of its own (session 10)
        ("refined with learned patterns (ours), alpha, no Cutout, from a shorter R", _run_final,
         (None, "resnet20_proj3-B-ste"), "refined", "refined"),
        # session 11 (an H200): a new R, its weights averaged, and its learned-pattern refinement
        ("full precision, session 11", _run_final, (None, "resnet20_proj3-R-h200"), "full", "full"),
        ("full precision, session 11, weights averaged (SWA)", _run_final,
         (None, "resnet20_proj3-R-h200-swa"), "full", "full"),
        ("full precision, session 11 + a second cosine cycle (90 epochs, batch 128, session 13)",
         _run_final, (None, "resnet20_proj3-R-h200-restart"), "full", "full"),
        ("full precision, 200 epochs at batch 128 from scratch (sessions 13-14, this CPU)",
         _run_final, (None, "resnet20_proj3-R128-long"), "full", "full"),
        ("full precision, 80 epochs at batch 128, distilled from the sepnet_cifar R "
         "(from session 16, this CPU)", _run_final, (None, "resnet20_proj3-R-kd"), "full", "full"),
        ("full precision, 200 epochs at batch 128, distilled from the sepnet_cifar R + ResNet-32 R "
         "(from session 26, this CPU; its loss in bfloat16)", _run_final,
         (None, "resnet20_proj3-R-kd-long"), "full", "full"),
        ("the same, its loss in float32 from epoch 45 (from session 34, this CPU)", _run_final,
         (None, "resnet20_proj3-R-kd-long-f32loss"), "full", "full"),
        ("that R trained on for 60 epochs (lr 0.05 cosine), distilled from three networks "
         "(session 37, an H200)", _run_final, (None, "resnet20_proj3-R-kd-long3"), "full", "full"),
        ("that R (90.96%) trained on at lr 0.01 cosine, distilled from the sepnet_cifar long3 R + "
         "ResNet-32 R (session 41, this CPU)", _run_final, (None, "resnet20_proj3-R-kd-polish"),
         "full", "full"),
        ("full precision, 200 epochs at batch 128 from scratch, seed 5, distilled from the "
         "sepnet_cifar long3 R + ResNet-32 R (from session 42; float32 to epoch 99 on an AVX2 EPYC, "
         "bfloat16 autocast from epoch 100 on an AMX Xeon)", _run_final,
         (None, "resnet20_proj3-R-kd-best"), "full", "full"),
        ("the same recipe again, seed 6 (from session 47; bfloat16 autocast from epoch 0 on an AMX "
         "Xeon)", _run_final, (None, "resnet20_proj3-R-kd-seed6"), "full", "full"),
        ("the same recipe taught by all six finished R (their ensemble 92.36%), seed 7 (from "
         "session 50; bfloat16 autocast from epoch 0 on an AMX Xeon)", _run_final,
         (None, "resnet20_proj3-R-kd-ens6"), "full", "full"),
        ("refined with learned patterns (ours), alpha, no Cutout, from the session-11 R",
         _run_final, (None, "resnet20_proj3-B-ste-h200"), "refined", "refined"),
        ("the same refinement again, another seed (this CPU)", _run_final,
         (None, "resnet20_proj3-B-ste-h200-seed1"), "refined", "refined"),
        ("the same refinement over 100 epochs, a third seed (this CPU)", _run_final,
         (None, "resnet20_proj3-B-ste-h200-long"), "refined", "refined"),
    )
    runs = {k: _load(results / "runs" / f"{k}.json")
            for _, _, pair, _, _ in stages for k in pair if k}
    r1, b1, r3, b3 = (runs[k] for k in (
        "resnet20-R", "resnet20-B-plain", "resnet20_proj3-R", "resnet20_proj3-B-plain"))

    def drop(r, b):
        return f"{100 * (_run_final(r) - _run_final(b)):.2f} pt" if r and b else "–"

    lines = ["| stage | 1×1 projections (`resnet20`) | 3×3 projections (`resnet20_proj3`) | "
             "authors' repository (3×3, offset 0.09) | target | verdict (3×3) |", "|---|---|---|---|---|---|"]
    for name, value, (one, three), theirs, target in stages:
        one, three = runs.get(one), runs.get(three)
        if target:
            verdict = _verdict(value(three), RESNET20_TARGETS[target],
                               unfinished=_run_state(three))
        else:
            verdict = "measured" if value(three) is not None else "not run" if not three else "–"
        cells = (_run_cell(one, value(one)) if one else "–", _run_cell(three, value(three))) if target \
            else (pct(value(one)), pct(value(three)))
        authors = pct(RESNET20_AUTHORS[theirs]) if theirs else "–"
        lines.append(f"| {name} | {cells[0]} | {cells[1]} | {authors} | "
                     f"{'≥ ' + pct(RESNET20_TARGETS[target], 1) if target else '–'} | {verdict} |")
    authors_lost = 100 * (RESNET20_AUTHORS["full"] - RESNET20_AUTHORS["refined"])
    lines.append(f"| lost from full precision to refined (alpha) | {drop(r1, b1)} | "
                 f"{drop(r3, b3)} | {authors_lost:.2f} pt | – | measured |")
    return "\n".join(lines)


def _recipe(run: dict) -> str:
    a = run["args"]
    parts = ["crop + flip"]
    if a.get("cutout"):
        parts.append(f"Cutout {a['cutout']}")
    if a.get("label_smoothing"):
        parts.append(f"label smoothing {a['label_smoothing']:g}")
    return " + ".join(parts)


ABLATION = (  # (what is compared, run) pairs; the first of each pair is the paper's recipe
    ("sepnet_cifar R", "sepnet_cifar-R-plain"), ("sepnet_cifar R", "sepnet_cifar-R"),
    ("resnet20 R", "resnet20-R-plain"), ("resnet20 R", "resnet20-R"),
    # the refinements from the same R: with the R's Cutout + smoothing, and without
    ("resnet20 refined, alpha", "resnet20-B"), ("resnet20 refined, alpha", "resnet20-B-plain"),
    ("resnet20 refined, offset 0.09", "resnet20-B-offset"),
    ("resnet20 refined, offset 0.09", "resnet20-B-offset-plain"),
)


def render_ablation(results: Path) -> str:
    """The training recipe's effect: each arm's last epoch, train (augmented) beside validation."""
    lines = ["| model | run | training augmentation | epochs | train top-1 (augmented) | "
             "val top-1 |", "|---|---|---|---|---|---|"]
    for what, name in ABLATION:
        run = _load(results / "runs" / f"{name}.json")
        if not run:
            continue
        last = run["history"][-1]
        lines.append(f"| {what} | `{name}` | {_recipe(run)} | {run['epochs_done']}"
                     f"{_progress(run)} | {pct(last.get('train_top1'))} | {pct(last.get('val_top1'))} |")
    return "\n".join(lines)


# Same R, same augmentation: the paper's refinement, ± the R as teacher, ± learned patterns,
# and weight averaging continuing from the R and from the learned-pattern B.
REFINEMENTS = ("sepnet_cifar-B", "sepnet_cifar-B-kd", "sepnet_cifar-B-ste", "sepnet_cifar-B-ste-swa",
               "sepnet_cifar-R-swa", "sepnet_cifar-B-ste-h200", "sepnet_cifar-R-kd-ens",
               "sepnet_cifar-B-ste-kd-ens", "sepnet_cifar-R-kd-ens2",
               "sepnet_cifar-B-ste-kd-ens-teach", "sepnet_cifar-B-ste-kd-long",
               "sepnet_cifar-B-ste-polish", "sepnet_cifar-R-kd-long3", "sepnet_cifar-B-ste-kd-long3")
# ResNet-20 (3x3 projections): the paper's and the authors' refinements, and learned patterns.
REFINEMENTS_RESNET20 = ("resnet20_proj3-B-plain", "resnet20_proj3-B-authors", "resnet20_proj3-B-ste",
                        "resnet20_proj3-B-ste-swa", "resnet20_proj3-B-ste-h200",
                        "resnet20_proj3-B-ste-h200-seed1", "resnet20_proj3-B-ste-h200-long",
                        "resnet20_proj3-R128-B-ste-h200",
                        "resnet20_proj3-R-h200-swa", "resnet20_proj3-R-h200-restart",
                        "resnet20_proj3-R128-long", "resnet20_proj3-R128-h200",
                        "resnet20_proj3-R-kd", "resnet20_proj3-R-kd-long",
                        "resnet20_proj3-R-kd-long-f32loss", "resnet20_proj3-R-kd-long3",
                        "resnet20_proj3-R-kd-polish", "resnet20_proj3-R-kd-best",
                        "resnet20_proj3-R-kd-seed6", "resnet20_proj3-R-kd-ens6")


@functools.cache
def _default_wd() -> float:
    from .train import get_args_parser  # lazy: it imports torch, which rendering never needs
    return get_args_parser().get_default("wd")


def _schedule(run: dict) -> str:
    a = run["args"]
    lr = "lr ?" if a.get("lr") is None else f"lr {a['lr']:g}"
    if a.get("swa"):
        return f"weights averaged each epoch (SWA), {lr} constant"
    wd = "" if a.get("wd") in (None, _default_wd()) else f", wd {a['wd']:g}"
    amp = ", bfloat16 autocast" if a.get("amp") else ""
    return f"{lr} {a.get('lr_schedule') or 'cosine'}{wd}{amp}"


def _source_top1(run: dict):
    """Validation top-1 of the checkpoint a run started from, as the run recorded it."""
    return (run["extra"].get("source_accuracy") or {}).get("top1")


def _start(run: dict) -> str:
    src = run["extra"].get("finetuned_from")
    name = H200_STARTS.get(run["run"]) or (Path(src).parent.name if src else None)
    return f"`{name}` ({pct(_source_top1(run))})" if name else "–"


def render_refinements(results: Path, names: tuple[str, ...] = REFINEMENTS) -> str:
    """The paper's refinement (labels only, patterns frozen) beside the variants tried on it."""
    lines = ["| run | starts from | patterns | loss, schedule | epochs | right after binarization | "
             "train top-1 (augmented) | val top-1 | change from its start |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name in names:
        run = _load(results / "runs" / f"{name}.json")
        if not run:
            lines.append(f"| `{name}` | – | – | – | not run | – | – | – | – |")
            continue
        method = run["args"].get("binarize") or "none"
        patterns = {"ste": "learned (straight-through)", "none": "none (real-valued)",
                    "offset": f"frozen, fixed offset {run['args'].get('offset') or 0.09:g} (authors)"
                    }.get(method, "frozen (paper)")
        t = run["extra"].get("teacher")
        # an ensemble logs "checkpoints", a single teacher "checkpoint" (the older runs' layout)
        paths = [c for c in (t.get("checkpoints") or [t.get("checkpoint")]) if c] if t else []
        who = " + ".join(f"`{Path(c).parent.name}`" for c in paths)
        kind = "teacher" if len(paths) < 2 else "teachers' mean logits"
        loss = (f"{1 - t['weight']:g} × labels + {t['weight']:g} × {kind}"
                f"{' ' + who if who else ''} (T = {t['temperature']:g})" if t else "labels only")
        loss += f", {_recipe(run)}; {_schedule(run)}"
        src = _source_top1(run)
        fine = _run_final(run)
        change = f"{100 * (fine - src):+.2f} pt" if src is not None and fine is not None else "–"
        after = pct(_after(run)) if method != "none" else "n/a"
        lines.append(f"| `{name}` | {_start(run)} | {patterns} | {loss} | "
                     f"{run['epochs_done']}{_progress(run)} | {after} | "
                     f"{pct(run['history'][-1].get('train_top1'))} | {pct(fine)} | {change} |")
    return "\n".join(lines)


# (distilled run, its label-only twin: same model, recipe, seed and epoch budget)
KD_PAIRS = (("resnet20_proj3-R-kd", "resnet20_proj3-R128-h200"),
            ("resnet20_proj3-R-kd-long", "resnet20_proj3-R128-long"),
            ("resnet20_proj3-R-kd-long-f32loss", "resnet20_proj3-R128-long"))


def render_window_means(results: Path, pairs, headers: tuple[str, str], window: int = 10) -> str:
    """Mean validation top-1 of two runs over the same epochs, in windows.

    Single epochs swing by a few points at a high learning rate; a window's mean over epochs
    both runs have finished is the fair comparison while the first run is still going."""
    lines = [f"| epochs | {headers[0]}, mean val top-1 | {headers[1]}, mean val top-1 | difference |",
             "|---|---|---|---|"]
    for name, base_name in pairs:
        run, base = (_load(results / "runs" / f"{n}.json") for n in (name, base_name))
        if not run or not base:
            lines.append(f"| `{name}` against `{base_name}`: not run | – | – | – |")
            continue
        if len(pairs) > 1:
            lines.append(f"| `{name}` against `{base_name}` | | | |")
        n = min(len(run["history"]), len(base["history"]))
        for start in range(0, n, window):
            stop = min(start + window, n)
            a = [h["val_top1"] for h in run["history"][start:stop]]
            b = [h["val_top1"] for h in base["history"][start:stop]]
            ma, mb = sum(a) / len(a), sum(b) / len(b)
            lines.append(f"| {start}-{stop - 1} | {pct(ma)} | {pct(mb)} | "
                         f"{100 * (ma - mb):+.2f} pt |")
    return "\n".join(lines)


def render_teacher_gain(results: Path, pairs=KD_PAIRS, window: int = 10) -> str:
    return render_window_means(results, pairs, ("distilled", "labels only"), window)


# (learned-pattern B, the same recipe, seed and epoch budget from a weaker R): what a better start
# is worth, epoch by epoch, while the first run is still going
START_PAIRS = (("sepnet_cifar-B-ste-kd-long3", "sepnet_cifar-B-ste-kd-long"),)


def render_start_gain(results: Path, pairs=START_PAIRS, window: int = 10) -> str:
    """The headers name each run's start and its accuracy, as the checkpoints recorded them."""
    def start(name):
        run = _load(results / "runs" / f"{name}.json")
        return f"from {_start(run)}" if run else name
    return render_window_means(results, pairs, tuple(start(n) for n in pairs[0]), window)


# (the 200-epoch distilled ResNet-20 R again from scratch: seed 5 with stronger teachers, seed 6
# with the same teachers, then seed 7 taught by all six finished R; the 90.96% run each repeats).
# The 90.96% run's log holds the epochs 0-43 of the first run it was seeded from, so its history
# is the whole 200 epochs each rerun is measured against.
RERUN_PAIRS = (("resnet20_proj3-R-kd-best", "resnet20_proj3-R-kd-long-f32loss"),
               ("resnet20_proj3-R-kd-seed6", "resnet20_proj3-R-kd-long-f32loss"),
               ("resnet20_proj3-R-kd-ens6", "resnet20_proj3-R-kd-long-f32loss"))


def _rerun_header(run: dict | None, name: str) -> str:
    """A run named with its seed, its teachers' ensemble and its top-1 once finished."""
    if not run:
        return f"`{name}`"
    notes = [f"seed {run['args'].get('seed')}"]
    ensemble = run.get("extra", {}).get("teacher", {}).get("ensemble", {}).get("val_top1")
    if ensemble is not None:
        notes.append(f"teachers' ensemble {pct(ensemble)}")
    if not _run_state(run):
        notes.append(f"finished at {pct(_run_final(run))}")
    return f"`{name}` ({', '.join(notes)})"


def render_rerun_gain(results: Path, pairs=RERUN_PAIRS, window: int = 10) -> str:
    """Each rerun against the run it repeats, over the epochs both have finished: one table a
    pair, so that each table's headers name its own runs."""
    tables = []
    for pair in pairs:
        headers = tuple(_rerun_header(_load(results / "runs" / f"{n}.json"), n) for n in pair)
        tables.append(render_window_means(results, (pair,), headers, window))
    return "\n\n".join(tables)


# (ResNet-32 R, the ResNet-20 R of the same recipe, seed and epoch budget)
DEPTH_PAIRS = (("resnet32_proj3-R", "resnet20_proj3-R128-h200"),)
# (their learned-pattern refinements: same recipe, 33 epochs each)
DEPTH_PAIRS_REFINED = (("resnet32_proj3-B-ste", "resnet20_proj3-R128-B-ste-h200"),)


def render_depth_gain(results: Path, pairs=DEPTH_PAIRS, window: int = 10,
                      headers: tuple[str, str] = ("ResNet-32", "ResNet-20")) -> str:
    """ResNet-32 against ResNet-20 epoch by epoch, and the median epoch time of the deeper run."""
    table = render_window_means(results, pairs, headers, window)
    run = _load(results / "runs" / f"{pairs[0][0]}.json")
    seconds = [h["seconds"] for h in (run or {}).get("history", []) if "seconds" in h]
    if not seconds:
        return table
    return (table + f"\n\nMedian epoch of `{pairs[0][0]}`: {statistics.median(seconds):.0f} s "
            f"over {len(seconds)} epochs.")


# (stage, measure, ResNet-32 run, ResNet-20 run of the same recipe, authors' ResNet-32 key)
RESNET32_STAGES = (
    ("full precision, 80 epochs at batch 128", _run_final, "resnet32_proj3-R",
     "resnet20_proj3-R128-h200", "full"),
    ("right after binarization, alpha", _after, "resnet32_proj3-B-ste",
     "resnet20_proj3-R128-B-ste-h200", "after"),
    ("refined with learned patterns (ours), alpha, no Cutout", _run_final, "resnet32_proj3-B-ste",
     "resnet20_proj3-R128-B-ste-h200", "refined"),
)


def render_resnet32(results: Path, stages=RESNET32_STAGES) -> str:
    """ResNet-32 (3x3 projections) beside the ResNet-20 trained with the same recipe and the
    authors' repository; the difference from the authors says how far the recipe is from theirs."""
    lines = ["| stage | `resnet32_proj3` (ours) | `resnet20_proj3`, same recipe (ours) | "
             "authors' ResNet-32 (test set) | ours − authors' |", "|---|---|---|---|---|"]
    for name, value, run32, run20, key in stages:
        r32, r20 = (_load(results / "runs" / f"{n}.json") for n in (run32, run20))
        theirs = RESNET32_AUTHORS[key]

        def cell(run):  # a final accuracy says how far its run got; right-after-binarization not
            if value is _run_final:
                return _run_cell(run, value(run))
            return pct(value(run)) if run else "not run"
        ours = value(r32) if r32 else None
        diff = ("unfinished" if r32 and value is _run_final and _progress(r32)
                else f"{100 * (ours - theirs):+.2f} pt" if ours is not None else "–")
        lines.append(f"| {name} | {cell(r32)} | {cell(r20)} | {pct(theirs)} | {diff} |")
    return "\n".join(lines)


def render_quant_error(figures: Path) -> str:
    lines = ["| model | 1×1 | 3×3 | 5×5 |", "|---|---|---|---|",
             "| GoogLeNet (poster) | " + " | ".join(f"{POSTER_GOOGLENET[k]:.4f}"
                                                for k in ("1x1", "3x3", "5x5")) + " |"]
    for name in ("sepnet_cifar", "resnet20", "resnet20_proj3"):
        r = _load(figures / f"{name}.json")
        if r is None:
            continue
        errs = (r or {}).get("errors", {})
        cells = [f"{errs[k]['mean_error']:.4f} ({errs[k]['layers']} layers)" if k in errs else "–"
                 for k in ("1x1", "3x3", "5x5")]
        lines.append(f"| {name} R (ours) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


BINARIZATION_PAIRS = (  # (model, R analysis under docs/figures, its fine-tuned binarized run)
    ("sepnet_cifar", "superseded/sepnet_cifar-session4", "superseded/session4-sepnet_cifar-B"),
    ("sepnet_cifar", "sepnet_cifar", "sepnet_cifar-B"),
    ("resnet20 (1×1 projections)", "resnet20", "resnet20-B-plain"),
    ("resnet20_proj3", "superseded/resnet20_proj3-session5",
     "superseded/session5-resnet20_proj3-B-plain"),
    ("resnet20_proj3", "resnet20_proj3", "resnet20_proj3-B-plain"),
    ("resnet20_proj3", "resnet20_proj3-cpu", "resnet20_proj3-B-ste"),  # learned patterns
    ("resnet20_proj3", "resnet20_proj3-h200", "resnet20_proj3-B-ste-h200"),  # the same, session 11
)


def render_binarization(results: Path, figures: Path) -> str:
    """Each R's scale-free binarization error beside what its fine-tuned binarized model lost."""
    lines = ["| model | R epochs | R val top-1 | relative error of the pattern convs | "
             "B / refined (alpha unless noted), val top-1 | lost |", "|---|---|---|---|---|---|"]
    for model, fig, run_name in BINARIZATION_PAIRS:
        r, b = _load(figures / f"{fig}.json"), _load(results / "runs" / f"{run_name}.json")
        if not r or "patterns" not in r:
            continue
        rel = r["patterns"]
        fine = _run_final(b)
        lost = f"{100 * (r['val_top1'] - fine):.2f} pt" if fine is not None else "–"
        how = ", learned patterns" if b and b["args"].get("binarize") == "ste" else ""
        fine_cell = f"{pct(fine)} ({b['epochs_done']} ep{how})" if fine is not None else "–"
        lines.append(f"| {model} | {r['epochs']} | {pct(r['val_top1'])} | "
                     f"{rel['mean_relative_error']:.3f} ({rel['layers']} layers) | "
                     f"{fine_cell} | {lost} |")
    return "\n".join(lines)


# The paired comparisons behind each shipping decision (sepnet_train/compare.py, written by
# reproduce_cifar.sh's *_compare stages): shipped file against candidate, on the same images.
SHIP_DECISIONS = (("compare_r_kd_ens.json", "sepnet_cifar R",
                   "shipped R (146 ep)", "R trained on 30 ep, distilled from R + ResNet-32 R"),
                  ("compare_b_kd_ens.json", "sepnet_cifar B",
                   "shipped B then (session 6, frozen patterns)", "learned-pattern B from the distilled R"),
                  ("compare_bq_kd_ens.json", "sepnet_cifar BQ (the page's default)",
                   "shipped BQ then (session 6)", "BQ of the learned-pattern B from the distilled R"),
                  ("compare_r_kd_ens2.json", "sepnet_cifar R",
                   "shipped R (distilled once)", "R distilled again, from itself + ResNet-32 R"),
                  ("compare_b_kd_ens_teach.json", "sepnet_cifar B", "shipped B then (session 6, frozen patterns)",
                   "learned-pattern B from the distilled R, taught by it + ResNet-32 R"),
                  ("compare_bq_kd_ens_teach.json", "sepnet_cifar BQ (the page's default)",
                   "shipped BQ then (session 6)", "BQ of that B"),
                  ("compare_b_kd_long.json", "sepnet_cifar B", "shipped B (taught, 20 ep)",
                   "the same run with 60 epochs"),
                  ("compare_bq_kd_long.json", "sepnet_cifar BQ (the page's default)",
                   "shipped BQ (taught, 20 ep)", "BQ of that B"),
                  ("compare_b_polish.json", "sepnet_cifar B", "shipped B (taught, 60 ep)",
                   "its patterns frozen, 10 epochs polished"),
                  ("compare_bq_polish.json", "sepnet_cifar BQ (the page's default)",
                   "shipped BQ (taught, 60 ep)", "BQ of that B"),
                  ("compare_r_kd_long3.json", "sepnet_cifar R", "shipped R (distilled, 30 ep)",
                   "it trained on 60 ep at lr 0.05, distilled from three networks"),
                  ("compare_b_kd_long3.json", "sepnet_cifar B", "shipped B (taught, 60 ep)",
                   "the same recipe from that 91.86% R"),
                  ("compare_bq_kd_long3.json", "sepnet_cifar BQ (the page's default)",
                   "shipped BQ (taught, 60 ep)", "BQ of that B"))


def render_ship_decisions(results: Path, decisions=SHIP_DECISIONS) -> str:
    """Each candidate beside the file it would replace, with McNemar's exact test."""
    lines = ["| model | shipped | candidate | shipped top-1 | candidate top-1 | only shipped right "
             "| only candidate right | candidate − shipped (95% CI) | exact McNemar p | decision |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for file, model, shipped, candidate in decisions:
        c = _load(results / file)
        if not c:
            lines.append(f"| {model} | {shipped} | {candidate} | – | – | – | – | – | – | not run |")
            continue
        lo, hi = c["difference_ci95"]
        verdict = ("ship the candidate" if c["b_better_beyond_noise"] else
                   f"keep the shipped file (not better at p < {c['ship_alpha']:g})")
        lines.append(f"| {model} | {shipped} | {candidate} | {pct(c['top1_a'])} | {pct(c['top1_b'])} "
                     f"| {c['only_a_correct']} | {c['only_b_correct']} "
                     f"| {100 * c['difference']:+.2f} pt ({100 * lo:+.2f} to {100 * hi:+.2f}) "
                     f"| {c['mcnemar_p']:.3g} | {verdict} |")
    return "\n".join(lines)


def render_all(results: Path = RESULTS, manifest_path: Path | None = None,
               figures: Path | None = None) -> dict[str, str]:
    manifest_path = manifest_path or REPO / "www" / "models" / "manifest.json"
    manifest = _load(manifest_path) or {}
    return {"sepnet_cifar": render_sepnet(results, manifest, shipped_runs(manifest_path.parent)),
            "resnet20": render_resnet20(results),
            "projections": render_projections(results),
            "ablation": render_ablation(results),
            "refinements": render_refinements(results),
            "refinements_resnet20": render_refinements(results, REFINEMENTS_RESNET20),
            "teacher_gain": render_teacher_gain(results),
            "start_gain": render_start_gain(results),
            "rerun_gain": render_rerun_gain(results),
            "depth_gain": render_depth_gain(results),
            "depth_gain_refined": render_depth_gain(
                results, DEPTH_PAIRS_REFINED, window=5,
                headers=("ResNet-32 refined", "ResNet-20 refined")),
            "resnet32": render_resnet32(results),
            "quant_error": render_quant_error(figures or REPO / "docs" / "figures"),
            "binarization": render_binarization(results, figures or REPO / "docs" / "figures"),
            "ship_decisions": render_ship_decisions(results)}


def write_blocks(doc: Path, blocks: dict[str, str]) -> list[str]:
    """Replace each ``<!-- generated:NAME -->`` … ``<!-- end -->`` block; returns the names done."""
    text, done = doc.read_text(), []
    for name, body in blocks.items():
        pat = re.compile(rf"(<!-- generated:{re.escape(name)} -->\n).*?(<!-- end -->)", re.S)
        text, n = pat.subn(lambda m: m.group(1) + body + "\n" + m.group(2), text)
        if n:
            done.append(name)
    doc.write_text(text)
    return done


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", help="run folders to collect from first (e.g. ~/sepnet-runs)")
    p.add_argument("--results", default=str(RESULTS))
    p.add_argument("--write", help="RESULTS.md to update in place (default: print the tables)")
    a = p.parse_args(argv)
    results = Path(a.results)
    if a.runs:
        print("collected:", ", ".join(collect(Path(a.runs).expanduser(), results)) or "nothing")
    blocks = render_all(results)
    if a.write:
        print("updated blocks:", ", ".join(write_blocks(Path(a.write), blocks)) or "none")
    else:
        for name, body in blocks.items():
            print(f"## {name}\n{body}\n")


if __name__ == "__main__":
    main()
