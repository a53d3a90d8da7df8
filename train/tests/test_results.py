"""docs/RESULTS.md tables are rendered from measured artefacts, and say when a target is missed."""

import json

import torch

from sepnet_train import results as R


def fake_run(runs, name, epochs_done, epochs, top1, after=None, binarize="none"):
    d = runs / name
    d.mkdir(parents=True)
    history = [{"epoch": e, "val_top1": top1} for e in range(epochs_done)]
    extra = {"binarized_layers": ["a", "b"]} if after is not None else {}
    if after is not None:
        extra["acc_after_binarization"] = {"val_top1": after}
    torch.save({"model": {}, "epoch": epochs_done - 1, "history": history, "extra": extra,
                "args": {"model": name.split("-")[0], "epochs": epochs, "binarize": binarize},
                "accuracy": {"split": "val5000", "n": 5000, "top1": top1, "top5": 0.99}},
               d / "checkpoint.pth")


def test_collect_and_render(tmp_path):
    runs, res = tmp_path / "runs", tmp_path / "results"
    fake_run(runs, "sepnet_cifar-R", 50, 50, 0.9312)
    fake_run(runs, "sepnet_cifar-R-kd-ens", 30, 30, 0.9355)   # the R that ships (SEPNET_SHIPPED_RUNS)
    # the B and BQ that ship
    fake_run(runs, "sepnet_cifar-B-ste-kd-ens-teach", 12, 20, 0.9051, after=0.4012, binarize="ste")
    fake_run(runs, "resnet20-R", 100, 100, 0.9150)
    assert R.collect(runs, res) == ["sepnet_cifar-R", "resnet20-R", "sepnet_cifar-R-kd-ens",
                                    "sepnet_cifar-B-ste-kd-ens-teach"]
    summary = json.loads((res / "runs" / "sepnet_cifar-B-ste-kd-ens-teach.json").read_text())
    assert summary["extra"]["binarized_layers"] == 2 and summary["epochs_done"] == 12

    manifest = {"models": [
        {"file": "sepnet_cifar-r.sepnet", "params": 783290, "bytes": 3148192,
         "accuracy": {"top1": 0.9312, "top5": 0.998}},
        {"file": "sepnet_cifar-bq.sepnet", "params": 783290, "bytes": 1_200_000,
         "accuracy": {"top1": 0.915, "top5": 0.997}}]}
    (res / "engine_eval.json").write_text(json.dumps({"split": "val5000", "tolerance": 0.001,
        "models": [{"file": "sepnet_cifar-r.sepnet", "n": 5000, "ok": True,
                    "engine": {"top1": 0.9310, "top5": 0.998},
                    "torch": {"top1": 0.9312, "top5": 0.998}}]}))
    mpath = tmp_path / "manifest.json"
    mpath.write_text(json.dumps(manifest))
    blocks = R.render_all(res, mpath, tmp_path / "figures")

    rows = {line.split("|")[1].strip(): line for line in blocks["sepnet_cifar"].splitlines()
            if line.startswith("|")}
    assert "93.12% / 99.80%" in rows["R"] and "93.10% / 99.80%" in rows["R"] and "| met |" in rows["R"]
    # Each row names the run its file came from, and its training column is that run's.
    assert rows["R"].startswith("| R | `sepnet_cifar-R-kd-ens` |") and "| 93.55% |" in rows["R"]
    assert rows["BQ"].startswith("| BQ | `sepnet_cifar-B-ste-kd-ens-teach` |")
    other = R.render_sepnet(res, manifest, dict(R.SEPNET_SHIPPED_RUNS, R="sepnet_cifar-R"))
    assert "| R | `sepnet_cifar-R` | 783,290 | 3,148,192 | 93.12% |" in other
    assert "epoch 12 of 20: unfinished, resumable" in rows["B"] and "40.12%" in rows["B"]
    assert "missed (size)" in rows["BQ"]  # accurate enough, but over 1 MB
    assert "largest difference 0.02 point" in blocks["sepnet_cifar"]
    assert "| full precision | 91.50% | 91.18% | ≥ 91.0% | met |" in blocks["resnet20"]

    fake_run(runs, "resnet20-B-offset", 3, 30, 0.70, after=0.12, binarize="offset")
    R.collect(runs, res)
    r20 = R.render_all(res, mpath, tmp_path / "figures")["resnet20"]
    assert "| refined, offset 0.09 | 70.00% (epoch 3 of 30: unfinished, resumable) | 86.49% | ≥ 88.0% | unfinished |" in r20
    assert "| right after binarization, offset 0.09 | 12.00% |" in r20

    fake_low = {"models": [dict(manifest["models"][0], accuracy={"top1": 0.9105, "top5": 0.99})]}
    mpath.write_text(json.dumps(fake_low))
    assert "missed by 0.95 pt" in R.render_all(res, mpath, tmp_path / "figures")["sepnet_cifar"]


def test_write_blocks_replaces_only_marked_text(tmp_path):
    doc = tmp_path / "RESULTS.md"
    doc.write_text("intro\n<!-- generated:resnet20 -->\nold\n<!-- end -->\nkeep me\n")
    assert R.write_blocks(doc, {"resnet20": "new table", "absent": "x"}) == ["resnet20"]
    assert doc.read_text() == "intro\n<!-- generated:resnet20 -->\nnew table\n<!-- end -->\nkeep me\n"


def test_ablation_names_each_arms_recipe(tmp_path):
    runs, res = tmp_path / "runs", tmp_path / "results"
    fake_run(runs, "resnet20-R-plain", 76, 76, 0.8796)
    fake_run(runs, "resnet20-R", 71, 71, 0.8884)
    ck = torch.load(runs / "resnet20-R" / "checkpoint.pth", weights_only=False)
    ck["args"].update(cutout=16, label_smoothing=0.1)
    ck["history"][-1]["train_top1"] = 0.8888
    torch.save(ck, runs / "resnet20-R" / "checkpoint.pth")
    R.collect(runs, res)
    table = R.render_ablation(res)
    assert "| resnet20 R | `resnet20-R-plain` | crop + flip | 76 | – | 87.96% |" in table
    assert ("| resnet20 R | `resnet20-R` | crop + flip + Cutout 16 + label smoothing 0.1 | 71 | "
            "88.88% | 88.84% |") in table
    assert "sepnet_cifar" not in table  # arms without a run are left out, not invented
    r20 = R.render_resnet20(res)
    assert "without Cutout" not in r20  # no such refinement run yet: no row
    fake_run(runs, "resnet20-B-plain", 15, 15, 0.8211, after=0.1226, binarize="alpha")
    R.collect(runs, res)
    r20 = R.render_resnet20(res)
    assert "| refined without Cutout, alpha = mean\\|W\\| | 82.11% | – | ≥ 88.0% | missed by 5.89 pt |" in r20
    assert "`resnet20-B-plain` | crop + flip | 15 |" in R.render_ablation(res)



def test_projection_table_sets_both_layouts_side_by_side(tmp_path):
    runs, res = tmp_path / "runs", tmp_path / "results"

    def table_with(name=None, *args, **kwargs):
        if name:
            fake_run(runs, name, *args, **kwargs)
        R.collect(runs, res)
        return R.render_projections(res)

    fake_run(runs, "resnet20-R", 71, 71, 0.8884)
    fake_run(runs, "resnet20-B-plain", 15, 15, 0.8140, after=0.1226, binarize="alpha")
    table = table_with("resnet20_proj3-R", 28, 28, 0.8700)
    assert "| full precision | 88.84% (71 ep) | 87.00% (28 ep) | 91.18% | ≥ 91.0% | missed by 4.00 pt |" in table
    assert "| refined without Cutout, alpha | 81.40% (15 ep) | not run | 86.49% | ≥ 88.0% | not measured yet |" in table
    assert "| lost from full precision to refined (alpha) | 7.44 pt | – | 4.69 pt | – | measured |" in table
    table = table_with("resnet20_proj3-B-plain", 10, 20, 0.8500, after=0.2000, binarize="alpha")
    assert "| right after binarization, alpha | 12.26% | 20.00% | – | – | measured |" in table
    assert ("| refined without Cutout, alpha | 81.40% (15 ep) | 85.00% (epoch 10 of 20: "
            "unfinished, resumable) | 86.49% | ≥ 88.0% | unfinished |") in table
    assert "| 7.44 pt | 2.00 pt |" in table
    assert ("| refined as the authors: offset 0.09, wd 1e-4, step lr, no Cutout | – | not run | "
            "86.49% | ≥ 88.0% | not measured yet |") in table
    table = table_with("resnet20_proj3-B-authors", 30, 30, 0.8600, after=0.1100, binarize="offset")
    assert "| right after binarization, offset 0.09 | – | 11.00% | 15.46% | – | measured |" in table
    assert ("| refined as the authors: offset 0.09, wd 1e-4, step lr, no Cutout | – | "
            "86.00% (30 ep) | 86.49% | ≥ 88.0% | missed by 2.00 pt |") in table
    table = table_with("resnet20_proj3-B-ste", 68, 68, 0.8810, after=0.1038, binarize="ste")
    assert ("| refined with learned patterns (ours), alpha, no Cutout, from a shorter R | – | "
            "88.10% (68 ep) | 86.49% | ≥ 88.0% | met |") in table


def test_binarization_table_pairs_each_r_with_its_refinement(tmp_path):
    runs, res, figs = tmp_path / "runs", tmp_path / "results", tmp_path / "figures"
    fake_run(runs, "sepnet_cifar-B", 32, 32, 0.8944, after=0.0912, binarize="alpha")
    R.collect(runs, res)
    figs.mkdir()
    (figs / "sepnet_cifar.json").write_text(json.dumps({
        "epochs": 146, "val_top1": 0.9082, "patterns": {"layers": 11, "mean_relative_error": 0.3938}}))
    (figs / "resnet20.json").write_text(json.dumps({"epochs": 71, "val_top1": 0.8884}))  # old
    table = R.render_binarization(res, figs)
    assert "| sepnet_cifar | 146 | 90.82% | 0.394 (11 layers) | 89.44% (32 ep) | 1.38 pt |" in table
    assert len(table.splitlines()) == 3  # header, rule, the one complete pair
    # a learned-pattern refinement says so
    fake_run(runs, "resnet20_proj3-B-ste", 68, 68, 0.8800, after=0.1038, binarize="ste")
    R.collect(runs, res)
    (figs / "resnet20_proj3-cpu.json").write_text(json.dumps({
        "epochs": 23, "val_top1": 0.8562, "patterns": {"layers": 18, "mean_relative_error": 0.37}}))
    table = R.render_binarization(res, figs)
    assert ("| resnet20_proj3 | 23 | 85.62% | 0.370 (18 layers) | 88.00% (68 ep, learned patterns)"
            " | -2.38 pt |") in table


def test_refinements_table_puts_each_variant_beside_the_papers_refinement(tmp_path):
    runs, res = tmp_path / "runs", tmp_path / "results"
    assert "| `sepnet_cifar-B-kd` | – | – | – | not run |" in R.render_refinements(res)
    for name, top1, teacher, method, src, swa in (
            ("sepnet_cifar-B", 0.8944, None, "alpha", ("sepnet_cifar-R", 0.9082), False),
            ("sepnet_cifar-B-kd", 0.9001, {"weight": 0.9, "temperature": 4.0,
                                           "checkpoint": "/r/sepnet_cifar-R/checkpoint.pth"}, "alpha",
             ("sepnet_cifar-R", 0.9082), False),
            ("sepnet_cifar-B-ste", 0.8990, None, "ste", ("sepnet_cifar-R", 0.9082), False),
            ("sepnet_cifar-B-ste-swa", 0.8950, None, "ste", ("sepnet_cifar-B-ste", 0.8990), True),
            ("sepnet_cifar-R-swa", 0.9120, None, "none", ("sepnet_cifar-R", 0.9082), True),
            ("sepnet_cifar-R-kd-ens", 0.9130, {"weight": 0.9, "temperature": 4.0, "checkpoints": [
                "/r/sepnet_cifar-R-recovered/checkpoint.pth", "/r/resnet32_proj3-R/checkpoint.pth"]},
             "none", ("sepnet_cifar-R-recovered", 0.9082), False)):
        fake_run(runs, name, 20, 20, top1, after=None if method == "none" else 0.0916,
                 binarize=method)
        ck = torch.load(runs / name / "checkpoint.pth", weights_only=False)
        ck["extra"]["source_accuracy"] = {"top1": src[1]}
        ck["extra"]["finetuned_from"] = f"/somewhere/{src[0]}/checkpoint.pth"
        ck["args"].update(lr=0.005 if swa else 0.01, swa=swa,
                          lr_schedule="constant" if swa else "cosine")
        if teacher:
            ck["extra"]["teacher"] = teacher
        ck["history"][-1]["train_top1"] = 0.91
        torch.save(ck, runs / name / "checkpoint.pth")
    R.collect(runs, res)
    table = R.render_refinements(res)
    assert ("| `sepnet_cifar-B` | `sepnet_cifar-R` (90.82%) | frozen (paper) | labels only, crop + "
            "flip; lr 0.01 cosine | 20 | 9.16% | 91.00% | 89.44% | -1.38 pt |") in table
    assert ("| `sepnet_cifar-B-kd` | `sepnet_cifar-R` (90.82%) | frozen (paper) | 0.1 × labels + "
            "0.9 × teacher `sepnet_cifar-R` (T = 4), crop + flip; lr 0.01 cosine | 20 | 9.16% | 91.00% | "
            "90.01% | "
            "-0.81 pt |") in table
    assert ("| `sepnet_cifar-B-ste` | `sepnet_cifar-R` (90.82%) | learned (straight-through) | "
            "labels only, crop + flip; lr 0.01 cosine | 20 | 9.16% | 91.00% | 89.90% | -0.92 pt |"
            ) in table
    assert ("| `sepnet_cifar-B-ste-swa` | `sepnet_cifar-B-ste` (89.90%) | learned (straight-through)"
            " | labels only, crop + flip; weights averaged each epoch (SWA), lr 0.005 constant | 20 "
            "| 9.16% | 91.00% | 89.50% | -0.40 pt |") in table
    assert ("| `sepnet_cifar-R-swa` | `sepnet_cifar-R` (90.82%) | none (real-valued) | labels only, "
            "crop + flip; weights averaged each epoch (SWA), lr 0.005 constant | 20 | n/a | 91.00% "
            "| 91.20% | +0.38 pt |") in table
    assert ("| `sepnet_cifar-R-kd-ens` | `sepnet_cifar-R-recovered` (90.82%) | none (real-valued) | "
            "0.1 × labels + 0.9 × teachers' mean logits `sepnet_cifar-R-recovered` + "
            "`resnet32_proj3-R` (T = 4), crop + flip; lr 0.01 cosine | 20 | n/a | 91.00% | 91.30% | "
            "+0.48 pt |") in table


def test_resnet20_refinements_name_the_authors_offset_and_weight_decay(tmp_path):
    runs, res = tmp_path / "runs", tmp_path / "results"
    for name, method, sched, wd in (("resnet20_proj3-B-authors", "offset", "step", 1e-4),
                                    ("resnet20_proj3-B-ste", "ste", "cosine", 5e-4)):
        fake_run(runs, name, 26, 26, 0.8302, after=0.1044, binarize=method)
        ck = torch.load(runs / name / "checkpoint.pth", weights_only=False)
        ck["extra"]["source_accuracy"] = {"top1": 0.9026}
        ck["extra"]["finetuned_from"] = "/x/resnet20_proj3-R/checkpoint.pth"
        ck["args"].update(lr=0.01, lr_schedule=sched, wd=wd, offset=0.09, amp=method == "ste")
        ck["history"][-1]["train_top1"] = 0.8648
        torch.save(ck, runs / name / "checkpoint.pth")
    R.collect(runs, res)
    table = R.render_refinements(res, R.REFINEMENTS_RESNET20)
    assert "| `resnet20_proj3-B-plain` | – | – | – | not run |" in table
    assert ("| `resnet20_proj3-B-authors` | `resnet20_proj3-R` (90.26%) | frozen, fixed offset 0.09 "
            "(authors) | labels only, crop + flip; lr 0.01 step, wd 0.0001 | 26 | 10.44% | 86.48% | "
            "83.02% | -7.24 pt |") in table
    assert ("| `resnet20_proj3-B-ste` | `resnet20_proj3-R` (90.26%) | learned (straight-through) | "
            "labels only, crop + flip; lr 0.01 cosine, bfloat16 autocast | 26 |") in table
    assert "refinements_resnet20" in R.render_all(res, tmp_path / "none.json", tmp_path)


def test_h200_refinements_name_their_unpacked_start(tmp_path):
    # Session 11's device folders were unpacked under *-h200 names: the checkpoint still names the
    # device's folder (resnet20_proj3-R, session 6's name here), the table must name the real start.
    runs, res = tmp_path / "runs", tmp_path / "results"
    fake_run(runs, "resnet20_proj3-B-ste-h200", 30, 30, 0.8806, after=0.1, binarize="ste")
    ck = torch.load(runs / "resnet20_proj3-B-ste-h200" / "checkpoint.pth", weights_only=False)
    ck["extra"]["source_accuracy"] = {"top1": 0.9054}
    ck["extra"]["finetuned_from"] = "/root/sepnet-runs/resnet20_proj3-R/checkpoint.pth"
    torch.save(ck, runs / "resnet20_proj3-B-ste-h200" / "checkpoint.pth")
    fake_run(runs, "resnet20_proj3-R-h200", 168, 168, 0.9054)
    R.collect(runs, res)
    table = R.render_refinements(res, R.REFINEMENTS_RESNET20)
    assert "| `resnet20_proj3-B-ste-h200` | `resnet20_proj3-R-h200` (90.54%) |" in table
    assert "| +-2.48 pt |" not in table and "| -2.48 pt |" in table
    proj = R.render_projections(res)
    assert ("| refined with learned patterns (ours), alpha, no Cutout, from the session-11 R | – | "
            "88.06% (30 ep) | 86.49% | ≥ 88.0% | met |") in proj
    assert "| full precision, session 11 | – | 90.54% (168 ep) | 91.18% | ≥ 91.0% | missed by 0.46 pt |" in proj
    assert "| full precision, session 11, weights averaged (SWA) | – | not run |" in proj


def test_teacher_gain_compares_only_epochs_both_runs_finished(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    kd = {"history": [{"val_top1": 0.5 + 0.01 * e} for e in range(13)]}
    base = {"history": [{"val_top1": 0.5} for _ in range(80)]}
    (runs / "kd.json").write_text(json.dumps(kd))
    (runs / "base.json").write_text(json.dumps(base))
    table = R.render_teacher_gain(tmp_path, pairs=(("kd", "base"),), window=10)
    rows = table.splitlines()[2:]
    # epochs 0-9: kd mean 0.545; 10-12: kd mean 0.61; the twin's later epochs are not compared
    assert rows == ["| 0-9 | 54.50% | 50.00% | +4.50 pt |", "| 10-12 | 61.00% | 50.00% | +11.00 pt |"]
    missing = R.render_teacher_gain(tmp_path, pairs=(("kd", "absent"),))
    assert "not run" in missing


def test_start_gain_headers_name_each_runs_start_from_its_checkpoint(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()

    def run(name, start, top1, vals):
        return {"run": name, "history": [{"val_top1": v} for v in vals],
                "extra": {"finetuned_from": f"/x/{start}/checkpoint.pth",
                          "source_accuracy": {"top1": top1}}}
    (runs / "new.json").write_text(json.dumps(run("new", "R-better", 0.9186, [0.82, 0.86, 0.84])))
    (runs / "old.json").write_text(json.dumps(run("old", "R-shipped", 0.9158, [0.83] * 60)))
    table = R.render_start_gain(tmp_path, pairs=(("new", "old"),), window=2).splitlines()
    assert table[0] == ("| epochs | from `R-better` (91.86%), mean val top-1 | "
                        "from `R-shipped` (91.58%), mean val top-1 | difference |")
    assert table[2:] == ["| 0-1 | 84.00% | 83.00% | +1.00 pt |", "| 2-2 | 84.00% | 83.00% | +1.00 pt |"]


def test_rerun_gain_names_seeds_teachers_and_only_a_finished_runs_accuracy(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()

    def run(seed, ensemble, vals, epochs, top1):
        return {"args": {"seed": seed, "epochs": epochs}, "epochs_done": len(vals),
                "accuracy": {"top1": top1}, "history": [{"val_top1": v} for v in vals],
                "extra": {"teacher": {"ensemble": {"val_top1": ensemble}}}}
    (runs / "again.json").write_text(json.dumps(run(5, 0.9198, [0.70, 0.80, 0.90], 200, 0.90)))
    (runs / "first.json").write_text(json.dumps(run(4, 0.9214, [0.60, 0.70, 0.80, 0.91], 4, 0.9096)))
    table = R.render_rerun_gain(tmp_path, pairs=(("again", "first"),), window=2).splitlines()
    assert table[0] == ("| epochs | `again` (seed 5, teachers' ensemble 91.98%), mean val top-1 | "
                        "`first` (seed 4, teachers' ensemble 92.14%, finished at 90.96%), "
                        "mean val top-1 | difference |")
    assert table[2:] == ["| 0-1 | 75.00% | 65.00% | +10.00 pt |", "| 2-2 | 90.00% | 80.00% | +10.00 pt |"]
    assert "not run" in R.render_rerun_gain(tmp_path, pairs=(("again", "absent"),))
    # one table a pair, each headed by its own runs: the second rerun is not named in the first's
    (runs / "third.json").write_text(json.dumps(run(6, 0.9198, [0.75], 200, 0.75)))
    tables = R.render_rerun_gain(tmp_path, pairs=(("again", "first"), ("third", "first")),
                                 window=2).split("\n\n")
    assert len(tables) == 2 and "`third` (seed 6" in tables[1] and "`third`" not in tables[0]
    assert tables[1].splitlines()[2:] == ["| 0-0 | 75.00% | 60.00% | +15.00 pt |"]


def test_depth_gain_compares_windows_and_gives_the_deeper_runs_median_epoch(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    deep = {"history": [{"val_top1": 0.6, "seconds": s} for s in (300.0, 290.0, 900.0, 310.0)]}
    shallow = {"history": [{"val_top1": 0.5, "seconds": 60.0} for _ in range(80)]}
    (runs / "deep.json").write_text(json.dumps(deep))
    (runs / "shallow.json").write_text(json.dumps(shallow))
    block = R.render_depth_gain(tmp_path, pairs=(("deep", "shallow"),), window=3)
    lines = block.splitlines()
    assert lines[0] == "| epochs | ResNet-32, mean val top-1 | ResNet-20, mean val top-1 | difference |"
    assert lines[2:4] == ["| 0-2 | 60.00% | 50.00% | +10.00 pt |", "| 3-3 | 60.00% | 50.00% | +10.00 pt |"]
    # the median, not the mean, so one slow epoch (a busy machine) does not move it
    assert lines[-1] == "Median epoch of `deep`: 305 s over 4 epochs."
    assert "not run" in R.render_depth_gain(tmp_path, pairs=(("absent", "shallow"),))
    named = R.render_depth_gain(tmp_path, pairs=(("deep", "shallow"),), window=3,
                                headers=("ResNet-32 refined", "ResNet-20 refined"))
    assert named.splitlines()[0].startswith("| epochs | ResNet-32 refined, mean val top-1 | "
                                            "ResNet-20 refined, mean val top-1 |")


def test_resnet32_table_sets_the_same_recipe_resnet20_and_the_authors_beside(tmp_path):
    runs, res = tmp_path / "runs", tmp_path / "results"
    fake_run(runs, "resnet20_proj3-R128-h200", 80, 80, 0.8882)
    fake_run(runs, "resnet32_proj3-R", 12, 80, 0.7000)
    R.collect(runs, res)
    rows = R.render_resnet32(res).splitlines()[2:]
    assert rows[0] == ("| full precision, 80 epochs at batch 128 | 70.00% (epoch 12 of 80: unfinished, "
                       "resumable) | 88.82% (80 ep) | 92.76% | unfinished |")
    assert rows[1] == "| right after binarization, alpha | not run | not run | 26.34% | – |"
    # the finished R and its refinement: the difference from the authors is signed
    (runs / "resnet32_proj3-R" / "checkpoint.pth").unlink()
    (runs / "resnet32_proj3-R").rmdir()
    fake_run(runs, "resnet32_proj3-R", 80, 80, 0.9050)
    fake_run(runs, "resnet32_proj3-B-ste", 30, 30, 0.9100, after=0.1100, binarize="ste")
    R.collect(runs, res)
    rows = R.render_resnet32(res).splitlines()[2:]
    assert rows[0].endswith("| 90.50% (80 ep) | 88.82% (80 ep) | 92.76% | -2.26 pt |")
    assert rows[1] == "| right after binarization, alpha | 11.00% | not run | 26.34% | -15.34 pt |"
    assert rows[2].endswith("| 91.00% (30 ep) | not run | 90.21% | +0.79 pt |")


def test_ship_decisions_come_from_the_paired_comparisons(tmp_path):
    from sepnet_train import compare
    rng = torch.Generator().manual_seed(0)
    a = (torch.rand(5000, generator=rng) < 0.90).numpy()
    b = a.copy()
    b[:400] = True                      # the candidate also gets the first 400 images right
    c = dict(compare.paired_difference(a, b), ship_alpha=compare.SHIP_ALPHA)
    (tmp_path / "compare_r_kd_ens.json").write_text(json.dumps(c))
    same = dict(compare.paired_difference(a, a), ship_alpha=compare.SHIP_ALPHA)
    (tmp_path / "compare_b_kd_ens.json").write_text(json.dumps(same))
    rows = R.render_ship_decisions(tmp_path).splitlines()[2:]
    gained = int((~a[:400]).sum())
    assert f"| 0 | {gained} |" in rows[0] and rows[0].endswith("| ship the candidate |")
    assert f"{100 * gained / 5000:+.2f} pt" in rows[0]
    assert rows[1].endswith("| keep the shipped file (not better at p < 0.05) |")
    assert "| 1 |" in rows[1]           # p = 1 for identical predictions
    assert rows[2].endswith("| not run |")


def test_shipped_runs_come_from_the_files_provenance(tmp_path):
    """A committed file that names its run (export since session 28) overrides the fallback
    table; files without one keep it."""
    import torch
    from sepnet_train.export import export_sepnet
    from sepnet_train.models import create_model
    from sepnet_train.results import SEPNET_SHIPPED_RUNS, shipped_runs
    torch.manual_seed(0)
    export_sepnet(create_model("sepnet_cifar").eval(), "sepnet_cifar", "R",
                  tmp_path / "sepnet_cifar-r.sepnet",
                  provenance_extra={"training_run": "sepnet_cifar-R-new", "training_epochs": 7})
    runs = shipped_runs(tmp_path)
    assert runs["R"] == "sepnet_cifar-R-new"
    assert runs["B"] == SEPNET_SHIPPED_RUNS["B"] and runs["BQ"] == SEPNET_SHIPPED_RUNS["BQ"]
