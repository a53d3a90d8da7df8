"""device_trim.sh in a throwaway git repository: hide removes the big tracked folders, restore
brings them back byte for byte, and hide refuses while they hold uncommitted work."""
import shutil
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "device_trim.sh"
FOLDERS = ("train/snapshots", "tests/golden", "www/models", "docs/results", "docs/screenshots")


def _git(repo, *args):
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def _repo(tmp_path):
    repo = tmp_path / "repo"
    (repo / "train" / "scripts").mkdir(parents=True)
    shutil.copy(SCRIPT, repo / "train" / "scripts" / "device_trim.sh")
    (repo / "train" / "code.py").write_text("kept\n")
    for i, f in enumerate(FOLDERS):
        (repo / f).mkdir(parents=True)
        (repo / f / "big.bin").write_bytes(bytes([i]) * 1000)
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x")
    return repo


def _trim(repo, verb):
    return subprocess.run(["bash", str(repo / "train" / "scripts" / "device_trim.sh"), verb],
                          capture_output=True, text=True)


def test_hide_then_restore(tmp_path):
    repo = _repo(tmp_path)
    assert _trim(repo, "hide").returncode == 0
    assert not any((repo / f).exists() for f in FOLDERS)
    assert (repo / "train" / "code.py").read_text() == "kept\n"
    assert _trim(repo, "restore").returncode == 0
    for i, f in enumerate(FOLDERS):
        assert (repo / f / "big.bin").read_bytes() == bytes([i]) * 1000


def test_hide_refuses_uncommitted_work(tmp_path):
    repo = _repo(tmp_path)
    (repo / "docs" / "results" / "new.json").write_text("{}")
    r = _trim(repo, "hide")
    assert r.returncode == 1 and "uncommitted" in r.stderr
    assert (repo / "docs" / "results" / "new.json").exists()
    assert (repo / "train" / "snapshots" / "big.bin").exists()
