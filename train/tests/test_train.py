"""The training script end to end on tiny synthetic image folders: train, resume, binarize +
fine-tune (patterns stay frozen), DistributedDataParallel with 2 CPU processes (gloo), and the
ImageNet-style folder path (train/ + val/, 224 recipe) with sepnet_small."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sepnet_train import data as D
from sepnet_train.train import build_model_from_checkpoint, load_checkpoint

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    rng = np.random.RandomState(0)
    for ci, c in enumerate(CLASSES):
        (root / c).mkdir()
        for i in range(8):
            # Class-dependent colour so a few steps can learn something.
            img = rng.randint(0, 60, (32, 32, 3)).astype(np.uint8)
            img[..., ci % 3] += np.uint8(20 * (ci // 3 + 1))
            Image.fromarray(img).save(root / c / f"{i:04d}.png")
    return root


def run_train(folder, out, *extra, nproc=1, env_extra=None):
    env = dict(os.environ, SEPNET_CACHE=str(Path(out).parent / "cache"), OMP_NUM_THREADS="1")
    env.update(env_extra or {})
    args = ["--model", "resnet20", "--data-path", str(folder), "--val-per-class", "2",
            "--batch-size", "16", "--threads", "1", "--no-progress", "--output-dir", str(out),
            *extra]
    if nproc > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}",
               "--master_port", "29517", "-m", "sepnet_train.train", *args]
    else:
        cmd = [sys.executable, "-m", "sepnet_train.train", *args]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


def test_validation_split_is_fixed_and_disjoint(folder):
    classes, items = D.list_image_folder(folder)
    files = [r for r, _ in items]
    labels = np.array([c for _, c in items])
    a = D.validation_mask(files, labels, 2)
    b = D.validation_mask(list(files), labels.copy(), 2)
    assert (a == b).all() and a.sum() == 2 * len(CLASSES)
    for c in range(len(CLASSES)):
        assert a[labels == c].sum() == 2


def test_train_resume_and_logs(folder, tmp_path):
    out = tmp_path / "r"
    run_train(folder, out, "--epochs", "1")
    ck = load_checkpoint(out / "checkpoint.pth")
    assert ck["epoch"] == 0 and len(ck["history"]) == 1
    assert {"model", "optimizer", "args", "history", "accuracy"} <= set(ck)
    assert (out / "log.csv").exists() and (out / "curves.png").exists()
    run_train(folder, out, "--epochs", "2", "--resume")
    ck2 = load_checkpoint(out / "checkpoint.pth")
    assert ck2["epoch"] == 1 and [h["epoch"] for h in ck2["history"]] == [0, 1]
    assert json.loads((out / "log.json").read_text())[-1]["epoch"] == 1


def test_binarized_finetune_keeps_patterns_frozen(folder, tmp_path):
    src = tmp_path / "r"
    run_train(folder, src, "--epochs", "1")
    out = tmp_path / "b"
    r = run_train(folder, out, "--epochs", "1", "--finetune-from", str(src / "checkpoint.pth"),
                  "--binarize", "alpha", "--lr", "0.01")
    assert "right after binarization" in r.stdout
    ck = load_checkpoint(out / "checkpoint.pth")
    assert "acc_after_binarization" in ck["extra"]
    model = build_model_from_checkpoint(ck)
    source = build_model_from_checkpoint(load_checkpoint(src / "checkpoint.pth"))
    conv = model.blocks[0].conv1
    assert conv.binarized
    # The patterns are the signs of the real-valued weights they came from, unchanged by training.
    expect = torch.where(source.blocks[0].conv1.weight >= 0, 1.0, -1.0)
    assert torch.equal(conv.pattern, expect)
    assert not torch.equal(conv.alpha.detach(), conv.weight.detach().abs().flatten(1).mean(1)), \
        "alpha should have been fine-tuned"
    assert model.conv1.pattern is None, "the stem stays real-valued"


def test_distills_from_a_teacher_ensemble(folder, tmp_path):
    """Two teacher checkpoints (here two seeds of one model) train a student, which records both."""
    teachers = []
    for seed in ("0", "1"):
        run_train(folder, tmp_path / f"t{seed}", "--epochs", "1", "--seed", seed)
        teachers.append(str(tmp_path / f"t{seed}" / "checkpoint.pth"))
    out = tmp_path / "kd"
    run_train(folder, out, "--epochs", "1", "--finetune-from", teachers[0], "--teacher", *teachers)
    t = load_checkpoint(out / "checkpoint.pth")["extra"]["teacher"]
    assert t["checkpoints"] == teachers and len(t["accuracies"]) == 2 and t["weight"] == 0.9
    assert "checkpoint" not in t
    assert t["ensemble"]["val_n"] == 2 * len(CLASSES)
    # One teacher twice: the ensemble is that teacher, so its validation numbers are the ones
    # logged when the teacher was trained, and --eval-only reports them too.
    twice = tmp_path / "twice"
    run_train(folder, twice, "--epochs", "1", "--finetune-from", teachers[1],
              "--teacher", teachers[1], teachers[1])
    logged = load_checkpoint(teachers[1])["history"][-1]
    ens = load_checkpoint(twice / "checkpoint.pth")["extra"]["teacher"]["ensemble"]
    assert ens["val_top1"] == logged["val_top1"] and ens["val_top5"] == logged["val_top5"]
    assert ens["val_loss"] == pytest.approx(logged["val_loss"], rel=1e-5)
    r = run_train(folder, twice, "--epochs", "1", "--resume", "--eval-only",
                  "--teacher", teachers[1], teachers[1])
    shown = json.loads(r.stdout.strip().splitlines()[-1])["teacher"]
    assert shown["val_top1"] == logged["val_top1"]


def test_refuses_a_teacher_whose_run_has_not_finished(folder, tmp_path):
    """A checkpoint saved at epoch 1 of a planned 3 is refused as a teacher, by name."""
    t = tmp_path / "t"
    run_train(folder, t, "--epochs", "1")
    ckpt = load_checkpoint(t / "checkpoint.pth")
    ckpt["args"]["epochs"] = 3  # as if stopped after its first of three epochs
    half = tmp_path / "half.pth"
    torch.save(ckpt, half)
    env = dict(os.environ, SEPNET_CACHE=str(tmp_path / "cache"), OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "sepnet_train.train", "--model", "resnet20",
                        "--data-path", str(folder), "--val-per-class", "2", "--batch-size", "16",
                        "--threads", "1", "--no-progress", "--epochs", "1", "--teacher", str(half),
                        "--output-dir", str(tmp_path / "kd")], env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode != 0
    assert f"--teacher {half} is at epoch 1 of 3: a teacher must be a finished run" in r.stderr
    assert not (tmp_path / "kd" / "checkpoint.pth").exists()


def test_ste_finetune_learns_patterns_resumes_and_exports(folder, tmp_path):
    """``--binarize ste``: the latent weights train, the saved patterns are their signs, a resumed
    run keeps training them, and the exported B file computes what the checkpoint computes."""
    from sepnet_train import export, quant, reference
    src = tmp_path / "r"
    run_train(folder, src, "--epochs", "1")
    out = tmp_path / "ste"
    ste = ("--finetune-from", str(src / "checkpoint.pth"), "--binarize", "ste", "--lr", "0.5")
    run_train(folder, out, "--epochs", "1", *ste)
    run_train(folder, out, "--epochs", "2", "--resume", *ste)  # resuming repeats the run's flags
    ck = load_checkpoint(out / "checkpoint.pth")
    assert ck["epoch"] == 1
    model = build_model_from_checkpoint(ck).eval()
    source = build_model_from_checkpoint(load_checkpoint(src / "checkpoint.pth"))
    convs = {n: m for n, m in model.named_modules()
             if isinstance(m, quant.PatternConv2d) and m.binarized}
    assert convs and all(m.weight.requires_grad for m in convs.values())
    flipped = 0
    for n, m in convs.items():
        assert torch.equal(m.pattern, quant.sign(m.weight.detach())), n
        flipped += int((m.pattern != quant.sign(dict(source.named_modules())[n].weight)).sum())
    assert flipped > 0, "the patterns should have been learned"
    f = tmp_path / "ste-b.sepnet"
    export.main(["--checkpoint", str(out / "checkpoint.pth"), "--variant", "B", "--out", str(f)])
    ref = reference.load(f)
    assert ref.provenance["binarization"] == "ste"
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(ref(x), model(x), atol=1e-4, rtol=1e-4)


def test_vectorized_augment_matches_per_image_crops():
    """The batched gather makes exactly the crops and flips of the obvious per-image loop."""
    rng = np.random.RandomState(3)
    images = rng.randint(0, 256, (37, 32, 32, 3)).astype(np.uint8)
    loader = D.TensorLoader(images, np.zeros(37, dtype=np.int64), batch_size=37, train=True)
    x = loader.images
    got = loader._augment(x, torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)  # same draws, same order: offsets y, x, then flips
    oy = torch.randint(0, 9, (37,), generator=g)
    ox = torch.randint(0, 9, (37,), generator=g)
    flip = torch.rand(37, generator=g) < 0.5
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    for i in range(37):
        crop = padded[i, :, oy[i]:oy[i] + 32, ox[i]:ox[i] + 32]
        assert torch.equal(got[i], crop.flip(-1) if flip[i] else crop), i
    assert flip.any() and (~flip).any() and (oy != 4).any()


def test_pack_decodes_like_the_folder(folder, tmp_path):
    pack = tmp_path / "pack.npz"
    assert D.pack_jpegs(folder, pack) == 8 * len(CLASSES)
    # deflated (CIFAR-10's JPEGs share their headers and tables: 47.8 MB stored, 15.4 MB so)
    import zipfile
    assert zipfile.ZipFile(pack).getinfo("data.npy").compress_type == zipfile.ZIP_DEFLATED
    a, la, ca, fa = D.load_folder_uint8(folder, 32, cache_dir=tmp_path / "c1", workers=1)
    b, lb, cb, fb = D.load_pack_uint8(pack, 32, cache_dir=tmp_path / "c2", workers=1)
    assert np.array_equal(a, b) and np.array_equal(la, lb) and ca == cb and fa == fb
    c, *_ = D.load_pack_uint8(pack, 32, cache_dir=tmp_path / "c2")  # from the cache
    assert np.array_equal(a, c)


def test_deadline_cuts_the_epochs(folder, tmp_path):
    import time
    out = tmp_path / "d"
    r = run_train(folder, out, "--epochs", "5", "--deadline", str(time.time()))
    # The pace is judged after epoch 1 (epoch 0 pays for cudnn's searches), so 2 epochs run.
    assert "2 epochs instead of 5" in r.stdout
    ck = load_checkpoint(out / "checkpoint.pth")
    assert ck["epoch"] == 1 and ck["args"]["epochs"] == 2
    assert ck["extra"]["epochs_requested"] == 5
    assert len(ck["history"]) == 2


def test_deadline_refit_only_shortens_and_keeps_the_first_request():
    import argparse
    import time
    from sepnet_train.train import fit_epochs
    args, extra = argparse.Namespace(deadline=time.time() + 100, epochs=200), {}
    fit_epochs(args, extra, 2, 5.0)  # ~18 more epochs fit at 5 s each
    assert 2 + 17 <= args.epochs <= 2 + 18 and extra["epochs_requested"] == 200
    fit_epochs(args, extra, 5, 10.0)  # slower now: ~9 more
    assert 5 + 8 <= args.epochs <= 5 + 9 and extra["epochs_requested"] == 200
    before = args.epochs
    fit_epochs(args, extra, 5, 0.1)  # faster now: it never lengthens what was already set
    assert args.epochs == before


def test_cutout_zeroes_one_square_and_keeps_the_crop_draws():
    rng = np.random.RandomState(4)
    images = rng.randint(1, 256, (29, 32, 32, 3)).astype(np.uint8)
    labels = np.arange(29) % 10
    plain = D.TensorLoader(images, labels, batch_size=29, train=True, seed=2)
    cut = D.TensorLoader(images, labels, batch_size=29, train=True, seed=2, cutout=8)
    (xp, yp), = list(plain)
    (xc, yc), = list(cut)
    assert torch.equal(yp, yc)
    zeroed = (xc != xp).any(1)  # [B, H, W]: where cutout changed the normalized image
    assert torch.equal(xc[:, :, ~zeroed.any(0)], xp[:, :, ~zeroed.any(0)])
    assert (xc.permute(0, 2, 3, 1)[zeroed] == 0).all()
    for i in range(29):
        ys, xs = torch.nonzero(zeroed[i], as_tuple=True)
        assert len(ys) > 0  # a centre inside the image always leaves part of the square on it
        h, w = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
        assert h <= 8 and w <= 8 and len(ys) == h * w  # one axis-aligned square, maybe clipped
    full = [(zeroed[i].sum() == 64).item() for i in range(29)]
    assert any(full) and not all(full)  # some squares whole, some clipped at an edge


def test_distributed_two_cpu_processes(folder, tmp_path):
    out = tmp_path / "ddp"
    r = run_train(folder, out, "--epochs", "1", nproc=2)
    ck = load_checkpoint(out / "checkpoint.pth")
    h = ck["history"][0]
    # Each of the 2 ranks sees half the data; the logged numbers are reduced over both.
    assert h["val_n"] == 2 * len(CLASSES)
    assert ck["args"]["model"] == "resnet20"
    assert r.returncode == 0


class Batches(list):
    """Fixed batches standing in for a training loader (records the epoch it was set to)."""

    def set_epoch(self, epoch):
        self.epoch = epoch


@pytest.mark.parametrize("amp", [False, True])
def test_amp_trains_in_bfloat16_and_keeps_float32_weights(amp):
    """--amp runs the forward pass (convolutions included) in bfloat16 autocast, while the
    weights, the optimizer's state and evaluation stay float32; a few steps still learn."""
    from types import SimpleNamespace
    from sepnet_train.models import create_model
    from sepnet_train.train import evaluate, param_groups, train_one_epoch
    torch.manual_seed(0)
    model = create_model("resnet20")
    seen = set()
    model.conv1.register_forward_hook(lambda m, i, o: seen.add(o.dtype))
    x = torch.randn(32, 3, 32, 32)
    y = (x[:, 0].mean((1, 2)) > 0).long()  # learnable from the red channel's mean
    loader = Batches([(x, y)] * 8)
    args = SimpleNamespace(amp=amp, device="cpu", lr=0.05, warmup_epochs=0.0,
                           lr_schedule="constant", epochs=1, no_progress=True)
    opt = torch.optim.SGD(param_groups(model, 0.0), lr=0.05, momentum=0.9)
    crit = torch.nn.CrossEntropyLoss()
    before = evaluate(model, crit, loader[:1], args)["val_loss"]
    seen.clear()
    train_one_epoch(model, crit, opt, loader, 0, args)
    assert seen == {torch.bfloat16 if amp else torch.float32}
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all(st["momentum_buffer"].dtype == torch.float32 for st in opt.state.values())
    seen.clear()
    after = evaluate(model, crit, loader[:1], args)["val_loss"]
    assert seen == {torch.float32}  # evaluation is never autocast
    assert after < before


def test_imagenet_style_folder_trains_at_224_and_resumes(tmp_path):
    """The documented ImageNet command's path (``--dataset imagenet``: train/ and val/ class
    folders, random-resized crop at 224, batches moved to the device in channels_last) on a
    tiny folder of odd-sized JPEGs, with sepnet_small; then one more epoch by --resume."""
    root = tmp_path / "imagenet"
    rng = np.random.RandomState(0)
    for part, n in (("train", 2), ("val", 1)):
        for c in ("n01440764", "n01443537"):
            (root / part / c).mkdir(parents=True)
            for i in range(n):
                h, w = rng.randint(40, 90, 2)
                Image.fromarray(rng.randint(0, 255, (h, w, 3)).astype(np.uint8)).save(
                    root / part / c / f"{c}_{i}.JPEG", quality=90)
    out = tmp_path / "run"
    base = [sys.executable, "-m", "sepnet_train.train", "--model", "sepnet_small", "--dataset",
            "imagenet", "--data-path", str(root), "--batch-size", "4", "--workers", "0",
            "--threads", "1", "--no-progress", "--output-dir", str(out)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for epochs in (1, 2):
        r = subprocess.run([*base, "--epochs", str(epochs), "--resume"], env=env,
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    log = json.loads((out / "log.json").read_text())
    assert [h["epoch"] for h in log] == [0, 1]
    assert all(h["val_n"] == 2 for h in log)  # every validation image, each once
    ckpt = load_checkpoint(out / "checkpoint.pth")
    model = build_model_from_checkpoint(ckpt).eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 224, 224)).shape == (1, 2)  # classes from the folders
    # ...and it exports: the BQ file's labels are the folders' names, its output has 2 classes.
    from sepnet_train import export, reference
    export.main(["--checkpoint", str(out / "checkpoint.pth"), "--variant", "BQ",
                 "--out", str(tmp_path / "small-bq.sepnet")])
    ref = reference.load(tmp_path / "small-bq.sepnet")
    assert ref.labels == ["n01440764", "n01443537"]
    assert ref.provenance["training_run"] == "run" and ref.provenance["training_epochs"] == 2
    assert ref.preprocess["input_size"] == [224, 224]
    assert ref.preprocess["mean"] == list(D.IMAGENET_MEAN)
    assert ref(torch.zeros(1, 3, 224, 224)).shape == (1, 2)

    # The loader itself: 224×224 channels_last float batches, labels from the folder names.
    from sepnet_train.train import build_data, get_args_parser
    from sepnet_train.models import get_spec
    args = get_args_parser().parse_args(["--dataset", "imagenet", "--data-path", str(root),
                                         "--batch-size", "4", "--workers", "0"])
    args.rank, args.world_size, args.device = 0, 1, "cpu"
    train, valid, classes = build_data(args, get_spec("sepnet_small"))
    assert classes == ["n01440764", "n01443537"] and len(train) == 1 and len(valid) == 1
    x, y = next(iter(train))
    assert x.shape == (4, 3, 224, 224) and x.dtype == torch.float32
    assert x.is_contiguous(memory_format=torch.channels_last)
    assert set(y.tolist()) <= {0, 1}
    args.cutout = 16
    with pytest.raises(SystemExit, match="--cutout is for CIFAR-10"):
        build_data(args, get_spec("sepnet_small"))


def test_amp_loss_check_starts_every_mode_alike_on_the_same_batches(folder, tmp_path, monkeypatch):
    """amp_loss_check's comparison is fair only if each mode starts from the checkpoint's weights
    and sees the same batches: the same mode twice gives the same numbers to the bit, every mode
    scores the same before training, and the JSON holds every mode that ran. (float32 runs second
    in one call and alone in the other, so nothing may carry over from the mode before it.)"""
    from sepnet_train import amp_loss_check
    teacher = tmp_path / "t"
    run_train(folder, teacher, "--epochs", "1")
    student = tmp_path / "kd"
    run_train(folder, student, "--epochs", "1", "--seed", "1",
              "--teacher", str(teacher / "checkpoint.pth"))
    monkeypatch.setenv("SEPNET_CACHE", str(tmp_path / "cache"))

    def check(*modes):  # the JSON's per-mode rows
        out = tmp_path / f"check-{'-'.join(modes)}.json"
        amp_loss_check.main(amp_loss_check.get_args_parser().parse_args(
            [str(student / "checkpoint.pth"), "--steps", "3", "--probe", "20", "--threads", "1",
             "--modes", *modes, "--json-out", str(out)]))
        return json.loads(out.read_text())["modes"]

    rows = check("bf16-all", "fp32")  # fp32 after another mode
    rerun = check("fp32")["fp32"]
    assert set(rows) == {"fp32", "bf16-all"}
    assert rows["fp32"]["probe_before"] == rows["bf16-all"]["probe_before"]
    assert rows["fp32"]["probe_before"]["val_n"] == 20
    for key in ("probe_before", "probe_after", "train_loss_first_100", "train_loss_last_100"):
        assert rerun[key] == rows["fp32"][key]
    # The steps changed the weights, and bfloat16 did not take the same path as float32.
    assert rows["fp32"]["probe_after"]["val_loss"] != rows["fp32"]["probe_before"]["val_loss"]
    assert rows["bf16-all"]["train_loss_first_100"] != rows["fp32"]["train_loss_first_100"]


def test_compiled_teachers_teach_as_the_eager_ones(folder, tmp_path):
    """--compile-teachers changes speed, not what the teachers say: the same ensemble numbers and,
    from the same start and seed, the same student to rounding."""
    teacher = tmp_path / "t"
    run_train(folder, teacher, "--epochs", "1")
    t = str(teacher / "checkpoint.pth")
    runs = {}
    for name, extra in (("eager", ()), ("compiled", ("--compile-teachers",))):
        run_train(folder, tmp_path / name, "--epochs", "2", "--finetune-from", t,
                  "--teacher", t, t, *extra)
        runs[name] = load_checkpoint(tmp_path / name / "checkpoint.pth")
    assert runs["compiled"]["args"]["compile_teachers"] is True
    e, c = (runs[n]["extra"]["teacher"]["ensemble"] for n in ("eager", "compiled"))
    assert c["val_top1"] == e["val_top1"] and c["val_loss"] == pytest.approx(e["val_loss"], rel=1e-4)
    for he, hc in zip(runs["eager"]["history"], runs["compiled"]["history"], strict=True):
        assert hc["train_loss"] == pytest.approx(he["train_loss"], rel=1e-3)
        assert hc["val_loss"] == pytest.approx(he["val_loss"], rel=1e-3)
