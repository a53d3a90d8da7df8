"""device_stage: resumed runs keep their optimizer state, read-only ones travel without it."""
import pytest
import torch
from torch import nn

from sepnet_train import device_stage


def _checkpoint(path, seed):
    torch.manual_seed(seed)
    model = nn.Linear(8, 4)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(2, 8)).sum().backward()
    opt.step()  # momentum buffers exist now
    ckpt = {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 3,
            "args": {"model": "x", "epochs": 4}, "history": [{"epoch": 3}]}
    path.parent.mkdir(parents=True)
    torch.save(ckpt, path)
    return ckpt


def test_stages_whole_and_slim_checkpoints(tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "out"
    a = _checkpoint(runs / "a" / "checkpoint.pth", 0)
    b = _checkpoint(runs / "b" / "checkpoint.pth", 1)
    total = device_stage.main(["--runs", str(runs), "--out", str(out), "--resume", "a", "--read", "b"])
    got_a = torch.load(out / "a" / "checkpoint.pth", weights_only=False)
    got_b = torch.load(out / "b" / "checkpoint.pth", weights_only=False)
    assert got_a["optimizer"]["state"][0]["momentum_buffer"].equal(
        a["optimizer"]["state"][0]["momentum_buffer"])
    assert "optimizer" not in got_b
    for k, v in b["model"].items():
        assert got_b["model"][k].equal(v)
    assert got_b["epoch"] == 3 and got_b["args"] == b["args"] and got_b["history"] == b["history"]
    assert total == sum(p.stat().st_size for p in out.rglob("checkpoint.pth"))
    assert not list(out.rglob("*.tmp"))


def test_a_missing_run_is_a_clear_exit(tmp_path):
    with pytest.raises(SystemExit, match="no checkpoint for nope"):
        device_stage.main(["--runs", str(tmp_path), "--out", str(tmp_path / "o"), "--read", "nope"])
